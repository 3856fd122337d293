"""The state root computed from its definition (docs/ledger.md, "The state tree"), for tests.

None of the tree's machinery: no versions, no incremental update, each
subtree hashed from the records under it.
"""

from __future__ import annotations

import hashlib


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# The hash of a subtree with no records, by its depth (4: a bucket).
EMPTY = {4: sha(b"\x00")}
for _depth in (3, 2, 1, 0):
    EMPTY[_depth] = sha(b"\x01" + EMPTY[_depth + 1] * 16)


def reference_root(records: dict[bytes, bytes]) -> bytes:
    buckets: dict[int, list[bytes]] = {}
    for key, value in records.items():
        hashed = sha(key)
        buckets.setdefault(int.from_bytes(hashed[:2], "big"), []).append(hashed + sha(value))
    # The subtrees holding a record, by depth: each bucket's index shifted up to that depth.
    occupied = {depth: {bucket >> 4 * (4 - depth) for bucket in buckets} for depth in range(5)}

    def subtree(depth: int, index: int) -> bytes:
        if index not in occupied[depth]:
            return EMPTY[depth]
        if depth == 4:
            return sha(b"\x00" + b"".join(sorted(buckets[index])))
        return sha(b"\x01" + b"".join(subtree(depth + 1, 16 * index + i) for i in range(16)))

    return subtree(0, 0)
