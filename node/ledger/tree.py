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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node.core.state_proof import (
    BUCKET_TAG,
    BUCKETS,
    EMPTY_BUCKET_HASH,
    ENTRY_SIZE,
    FANOUT,
    LEVELS,
    StateProof,
    bucket_of,
    node_hash,
)
from node.ledger._tree import merge, rehash


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
        return cls([BUCKET_TAG] * BUCKETS, _EMPTY_LEVELS)

    @classmethod
    def build(cls, records: Iterable[tuple[bytes, bytes]]) -> StateTree:
        """The tree of a whole state, from its records in any order (each key once): opening a store
        rebuilds its tree this way from every record, as one block that writes them all."""
        empty = cls.empty()
        return empty.advance(empty.prepare(list(records)))

    @property
    def root(self) -> bytes:
        return self._levels[0][0]

    def prepare(self, records: Sequence[tuple[bytes, bytes | None]]) -> TreeUpdate:
        """The next version's hashes after ``records`` (each key once; a value of None deletes), this
        version unchanged.  The work is node/ledger/_tree.c's: what a 10,000-transfer block waits on."""
        changed = merge(self._buckets, records)
        levels = rehash(self._levels, changed)
        return TreeUpdate(levels[0][0], changed, levels)

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


def _empty_levels() -> tuple[list[bytes], ...]:
    levels = [[EMPTY_BUCKET_HASH] * BUCKETS]
    while len(levels[0]) > 1:
        below = levels[0]
        levels.insert(0, [node_hash(below[i:i + FANOUT]) for i in range(0, len(below), FANOUT)])
    return tuple(levels)


_EMPTY_LEVELS = _empty_levels()
