"""The snapshots a node keeps on disk and serves to peers: one file per height.

    <data_dir>/snapshots/<height, 20 digits>.snapshot
        "somsnap1" || u32be len(manifest) || manifest || chunk 0 || ... || chunk 255

The manifest gives each chunk's record count, not its byte length, so the
file also carries the 256 byte lengths, as u64be, between the manifest and
the chunks.  A file is written under a temporary name, synced and renamed, so
a crash leaves a whole snapshot or none; a file that does not read back whole
at start is deleted.  Only the newest ``keep`` are kept.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from node.ledger.errors import LedgerCorruptError
from node.statesync.snapshot import (
    CHUNKS,
    MAX_CHUNK_BYTES,
    MAX_MANIFEST_BYTES,
    Manifest,
    SnapshotError,
    chunk_hash,
    chunk_of,
    encode_chunk,
)

log = logging.getLogger(__name__)

MAGIC = b"somsnap1"
SUFFIX = ".snapshot"
_U32 = struct.Struct(">I")
_LENGTHS = struct.Struct(f">{CHUNKS}Q")


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    path: Path
    manifest: bytes
    offsets: tuple[int, ...]  # where each chunk starts in the file, and where the last one ends


class SnapshotFiles:
    def __init__(self, directory: Path, keep: int) -> None:
        assert keep >= 1, "a snapshotting node keeps at least one"
        self._directory = directory
        self._keep = keep
        directory.mkdir(parents=True, exist_ok=True)
        # Replaced whole, never changed in place: the writer runs on a worker thread beside readers.
        self._kept: dict[int, StoredSnapshot] = {}
        kept = {}
        for path in sorted(directory.iterdir()):
            if path.name.endswith(".tmp"):
                path.unlink()
            elif path.suffix == SUFFIX:
                try:
                    kept[int(path.stem)] = _read_index(path)
                except (OSError, ValueError, struct.error) as exc:
                    log.warning("snapshot.dropped path=%s reason=%s", path, " ".join(str(exc).split()))
                    path.unlink()
        self._keep_newest(kept)

    def heights(self) -> tuple[int, ...]:
        return tuple(sorted(self._kept))

    def manifests(self) -> tuple[bytes, ...]:
        """The kept snapshots' manifests, newest first."""
        kept = self._kept
        return tuple(kept[height].manifest for height in sorted(kept, reverse=True))

    def chunk(self, height: int, index: int) -> bytes | None:
        """Chunk ``index`` of the snapshot of ``height`` as stored, or None if that snapshot is not kept."""
        stored = self._kept.get(height)
        if stored is None or not 0 <= index < CHUNKS:
            return None
        start, end = stored.offsets[index], stored.offsets[index + 1]
        try:
            with stored.path.open("rb") as file:
                file.seek(start)
                return file.read(end - start)
        except FileNotFoundError:
            return None  # deleted by a newer snapshot's trim since it was looked up

    def write(self, height: int, app_hash: bytes, records: Iterable[tuple[bytes, bytes]],
              tx_count: int, history_count: int) -> Manifest:
        """Write the snapshot of ``height`` from its records, which must hash to ``app_hash``."""
        chunks: list[list[tuple[bytes, bytes]]] = [[] for _ in range(CHUNKS)]
        for key, value in records:
            chunks[chunk_of(key)].append((key, value))
        encoded = [encode_chunk(records) for records in chunks]
        manifest = Manifest(height, app_hash, tuple(chunk_hash(i, records) for i, records in enumerate(chunks)),
                            tuple(len(records) for records in chunks), tx_count, history_count)
        try:
            manifest.check(app_hash)
        except SnapshotError as exc:
            # The records read back are not the state the tree hashed: the store is damaged.
            raise LedgerCorruptError(f"the state records of height {height} do not hash to its app hash "
                                     f"{app_hash.hex()}: {exc}") from exc
        too_large = [i for i, chunk in enumerate(encoded) if len(chunk) > MAX_CHUNK_BYTES]
        if too_large:
            raise SnapshotError(f"chunk {too_large[0]} of height {height} is {len(encoded[too_large[0]])} bytes, "
                                f"above the {MAX_CHUNK_BYTES} one frame carries")
        packed = manifest.encode()
        path = self._directory / f"{height:020d}{SUFFIX}"
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(MAGIC + _U32.pack(len(packed)) + packed + _LENGTHS.pack(*(len(c) for c in encoded)))
            for chunk in encoded:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _sync_directory(self._directory)
        self._keep_newest({**self._kept, height: _read_index(path)})
        return manifest

    def _keep_newest(self, kept: dict[int, StoredSnapshot]) -> None:
        newest = sorted(kept)[-self._keep:]
        self._kept = {height: kept[height] for height in newest}
        for height, stored in kept.items():
            if height not in self._kept:
                stored.path.unlink(missing_ok=True)


def _read_index(path: Path) -> StoredSnapshot:
    with path.open("rb") as file:
        head = file.read(len(MAGIC) + _U32.size)
        if head[:len(MAGIC)] != MAGIC or len(head) != len(MAGIC) + _U32.size:
            raise SnapshotError(f"{path.name} is not a snapshot file")
        (length,) = _U32.unpack(head[len(MAGIC):])
        if length > MAX_MANIFEST_BYTES:
            raise SnapshotError(f"{path.name} names a manifest of {length} bytes")
        packed = file.read(length)
        manifest = Manifest.decode(packed)
        lengths = _LENGTHS.unpack(file.read(_LENGTHS.size))
    offsets = [len(head) + length + _LENGTHS.size]
    for size in lengths:
        offsets.append(offsets[-1] + size)
    if offsets[-1] != path.stat().st_size:
        raise SnapshotError(f"{path.name} is {path.stat().st_size} bytes, not the {offsets[-1]} its index says")
    if f"{manifest.height:020d}" != path.stem:
        raise SnapshotError(f"{path.name} holds the snapshot of height {manifest.height}")
    return StoredSnapshot(path, packed, tuple(offsets))


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
