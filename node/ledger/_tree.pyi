from collections.abc import Sequence

LevelChanges = tuple[tuple[bytes, bytes], ...]  # per level, root first: packed positions, their new hashes

def update(
    buckets: list[bytes], levels: tuple[bytes | bytearray, ...], records: Sequence[tuple[bytes, bytes | None]]
) -> tuple[bytes, dict[int, bytes], bytes, LevelChanges]: ...
def install(levels: tuple[bytearray, ...], changes: LevelChanges) -> tuple[bytes, ...]: ...
