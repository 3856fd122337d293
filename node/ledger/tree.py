"""The state tree held in memory, one immutable version per committed height.

The shape and hashes are node/core/state_proof.py's.  The tree's leaves are
the ledger's application records, which each block writes in its one synced
LevelDB batch together with the root (the app hash); the interior is a pure
function of them, so it is not written but rebuilt when the store opens and
checked there against the stored root (docs/ledger.md, "The state tree").

A block is hashed in two steps, like its execution: ``prepare`` computes the
next version's buckets and hashes without touching this one (a proposal is
judged before it may commit), and ``advance`` makes them a version of their
own.  A version shares every unchanged bucket with the one before and is
never modified, so a reader may prove against it from any thread while the
next block is hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from node.core.state_proof import (
    BUCKET_TAG,
    BUCKETS,
    EMPTY_BUCKET_HASH,
    ENTRY_SIZE,
    FANOUT,
    HASH_SIZE,
    LEVELS,
    NODE_TAG,
    StateProof,
    bucket_of,
)


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """A block's records hashed into the next version: its root, and what ``advance`` installs."""

    root: bytes
    changed: dict[int, bytes]  # bucket -> as stored: the bucket tag, then its entries in key-hash order
    levels: tuple[list[bytes], ...]  # every level's hashes after the block: [root], 16, ..., 65,536 buckets


class StateTree:
    """One version.  A bucket is one ``bytes``: the bucket tag and its sorted 64-byte entries, which
    is what its hash covers, so it is hashed as it is stored; and unlike a list it is nothing the
    cyclic garbage collector has to walk."""

    __slots__ = ("_buckets", "_levels")

    def __init__(self, buckets: list[bytes], levels: tuple[list[bytes], ...]) -> None:
        assert len(buckets) == BUCKETS and len(levels) == LEVELS + 1, "a tree has its fixed shape"
        self._buckets = buckets
        self._levels = levels

    @classmethod
    def empty(cls) -> StateTree:
        return cls.build(())

    @classmethod
    def build(cls, records: Iterable[tuple[bytes, bytes]]) -> StateTree:
        """The tree of a whole state, from its records in any order (each key once), sorted and joined
        bucket by bucket: opening a store rebuilds its tree this way from every record."""
        sha256 = hashlib.sha256
        entries = sorted([sha256(key).digest() + sha256(value).digest() for key, value in records])
        buckets = [BUCKET_TAG] * BUCKETS
        for first, group in groupby(entries, key=lambda entry: entry[0] << 8 | entry[1]):
            buckets[first] = BUCKET_TAG + b"".join(group)
        levels = [[EMPTY_BUCKET_HASH if bucket == BUCKET_TAG else sha256(bucket).digest() for bucket in buckets]]
        for _ in range(LEVELS):
            below = levels[0]
            levels.insert(0, _parents(below, range(len(below) // FANOUT)))
        return cls(buckets, tuple(levels))

    @property
    def root(self) -> bytes:
        return self._levels[0][0]

    def prepare(self, records: Iterable[tuple[bytes, bytes | None]]) -> TreeUpdate:
        """The next version's hashes after ``records`` (each key once; a value of None deletes), this
        version unchanged.

        The records become entries (a deletion: the bare key hash) sorted by key hash, which brings each
        bucket's records together: a bucket's new bytes are cut from its stored ones, record by record,
        with no copy into a mutable buffer and back.  This loop is what a 10,000-transfer block waits on.
        """
        sha256 = hashlib.sha256
        entries = sorted([sha256(key).digest() if value is None else sha256(key).digest() + sha256(value).digest()
                          for key, value in records])
        buckets = self._buckets
        changed: dict[int, bytes] = {}
        position, stored = -1, b""
        for entry in entries:
            bucket = entry[0] << 8 | entry[1]
            if bucket != position:
                if position >= 0:
                    changed[position] = stored
                position, stored = bucket, buckets[bucket]
            hashed = entry[:HASH_SIZE]
            at = stored.find(hashed, 1)
            while at > 0 and (at - 1) % ENTRY_SIZE:  # a match across two entries is no entry
                at = stored.find(hashed, at + 1)
            if at > 0:  # the entry replaces the record's, or a deletion removes it
                stored = stored[:at] + entry + stored[at + ENTRY_SIZE:] if len(entry) == ENTRY_SIZE \
                    else stored[:at] + stored[at + ENTRY_SIZE:]
            elif len(entry) == ENTRY_SIZE:
                at = _insertion_point(stored, hashed)
                stored = stored[:at] + entry + stored[at:]
        if position >= 0:
            changed[position] = stored
        levels = [level.copy() for level in self._levels]
        below = levels[LEVELS]
        for bucket, stored in changed.items():
            below[bucket] = sha256(stored).digest()
        dirty: Iterable[int] = changed
        for depth in range(LEVELS - 1, -1, -1):
            dirty = sorted({index // FANOUT for index in dirty})
            here, below = levels[depth], levels[depth + 1]
            for index, parent in zip(dirty, _parents(below, dirty), strict=True):
                here[index] = parent
        return TreeUpdate(levels[0][0], changed, tuple(levels))

    def advance(self, update: TreeUpdate) -> StateTree:
        """The version ``update`` describes; ``update`` must have been prepared from this version."""
        if update.root == self.root:
            return self  # the same records (an empty block rewrites the supply as it was): share them all
        buckets = self._buckets.copy()
        for bucket, entries in update.changed.items():
            buckets[bucket] = entries
        return StateTree(buckets, update.levels)

    def proof(self, key: bytes) -> StateProof:
        """The proof of ``key``'s record, or of its absence, against this version's root."""
        position = bucket_of(hashlib.sha256(key).digest())
        packed = self._buckets[position]
        entries = tuple(packed[i:i + ENTRY_SIZE] for i in range(len(BUCKET_TAG), len(packed), ENTRY_SIZE))
        siblings = []
        for depth in range(LEVELS, 0, -1):
            first = position - position % FANOUT
            group = self._levels[depth][first:first + FANOUT]
            del group[position % FANOUT]
            siblings.append(tuple(group))
            position //= FANOUT
        return StateProof(entries, tuple(siblings))


def _insertion_point(entries: bytes, hashed: bytes) -> int:
    """Where a new key hash goes to keep the bucket sorted (its entries are few)."""
    for at in range(len(BUCKET_TAG), len(entries), ENTRY_SIZE):
        if entries[at:at + HASH_SIZE] > hashed:
            return at
    return len(entries)


def _parents(below: list[bytes], indices: Iterable[int]) -> list[bytes]:
    sha256 = hashlib.sha256
    return [sha256(NODE_TAG + b"".join(below[FANOUT * i:FANOUT * i + FANOUT])).digest() for i in indices]
