"""The state tree held in memory: the newest version whole, and what each kept block changed.

The shape and hashes are node/core/state_proof.py's.  The tree's leaves are
the ledger's application records, which each block writes in its one synced
LevelDB batch together with the root (the app hash); the interior is a pure
function of them, so it is not written but rebuilt when the store opens and
checked there against the stored root (docs/ledger.md, "The state tree").

A block is hashed in two steps, like its execution: ``prepare`` computes the
next version's buckets and hashes without touching the tree (a proposal is
judged before it may commit), and ``advance`` installs them.  Only the newest
version is held whole; each older kept version is the newest one with the
blocks after it undone, record by record and hash by hash.  Keeping every
version whole would hold a copy of each bucket a block touched (at a million
accounts, some 20 MB a block) for as long as the version is kept.  A prover
on another thread reads a version under the tree's lock, which ``advance``
takes while it installs a block.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from node.core.state_proof import (
    BUCKET_TAG,
    BUCKETS,
    EMPTY_BUCKET_HASH,
    ENTRY_SIZE,
    FANOUT,
    HASH_SIZE,
    LEVELS,
    StateProof,
    bucket_of,
    node_hash,
)
from node.ledger._tree import install, update

# A record's undo, as update writes it: its key hash, 1 if the key was present before the block
# (0 if not), and its value hash then.
_UNDO_SIZE = 2 * HASH_SIZE + 1
DEFAULT_KEPT_VERSIONS = 32


class VersionGoneError(LookupError):
    """The version is older than those the tree keeps."""


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """A block's records hashed against one version: its root, and what ``advance`` installs."""

    history: _History  # the tree it was prepared on
    base: int  # the version it was prepared from
    root: bytes
    changed: dict[int, bytes]  # bucket -> as stored: the bucket tag, then its entries in key-hash order
    undo: bytes  # each record as it was before the block, in key-hash order (_UNDO_SIZE bytes each)
    levels: tuple[tuple[bytes, bytes], ...]  # per level, root first: the changed positions (packed ints), new hashes


@dataclass(frozen=True, slots=True)
class _Undo:
    """What one block changed, as it was before: enough to see the version before it."""

    version: int
    records: bytes
    positions: tuple[memoryview, ...]  # per level, the positions the block changed, ascending
    hashes: tuple[bytes, ...]  # per level, the hashes those positions held before it


class _History:
    """The newest version's buckets and levels, changed in place by ``advance``, and the undo of each
    block after the oldest kept version."""

    __slots__ = ("buckets", "levels", "newest", "undos", "lock")

    def __init__(self, kept: int) -> None:
        assert kept >= 1, "the newest version is always kept"
        self.buckets = [BUCKET_TAG] * BUCKETS
        self.levels = tuple(bytearray(level) for level in _EMPTY_LEVELS)
        self.newest = 0
        self.undos: deque[_Undo] = deque(maxlen=kept - 1)
        self.lock = threading.Lock()

    def oldest(self) -> int:
        return self.newest - len(self.undos)


class StateTree:
    """One version of the tree: the newest, or an older one still kept.

    Only the newest version may be advanced; an older one can still be read
    (its root, its proofs) until ``kept`` newer versions have been made.
    """

    __slots__ = ("_history", "_version", "root")

    def __init__(self, history: _History, version: int, root: bytes) -> None:
        self._history = history
        self._version = version
        self.root = root

    @classmethod
    def empty(cls, kept: int = DEFAULT_KEPT_VERSIONS) -> StateTree:
        return cls(_History(kept), 0, _EMPTY_LEVELS[0])

    @classmethod
    def build(cls, records: Iterable[tuple[bytes, bytes]], kept: int = DEFAULT_KEPT_VERSIONS) -> StateTree:
        """The tree of a whole state, from its records in any order (each key once): opening a store
        rebuilds its tree this way, as one block that writes them all and keeps no undo of it."""
        empty = cls.empty(kept)
        built = empty.advance(empty.prepare(list(records)))
        built._history.undos.clear()
        return built

    def prepare(self, records: Sequence[tuple[bytes, bytes | None]]) -> TreeUpdate:
        """The next version's hashes after ``records`` (each key once; a value of None deletes), the tree
        unchanged.  The work is node/ledger/_tree.c's: what a 10,000-transfer block waits on.

        It reads the newest version without the lock: the caller runs it on the thread that advances,
        never beside ``advance`` (node/ledger/store.py serialises execution and commits)."""
        history = self._history
        if self._version != history.newest:
            raise ValueError(f"version {self._version} is not the newest ({history.newest}): only the newest "
                             f"is built on")
        root, changed, undo, levels = update(history.buckets, history.levels, records)
        return TreeUpdate(history, self._version, root, changed, undo, levels)

    def accepts(self, update: TreeUpdate) -> bool:
        """Whether ``advance`` would take ``update``: prepared on this tree from this version, the newest."""
        return update.history is self._history and self._version == update.base == self._history.newest

    def advance(self, update: TreeUpdate) -> StateTree:
        """The version ``update`` describes; ``update`` must have been prepared from this version, the newest."""
        history = self._history
        positions = tuple(memoryview(changed).cast("i") for changed, _ in update.levels)
        # Held here, the buckets the block replaces are freed after the lock, not while a prover waits on it.
        replaced_buckets = list(map(history.buckets.__getitem__, update.changed))
        with history.lock:
            if not self.accepts(update):
                raise ValueError(f"an update prepared from version {update.base} cannot advance version "
                                 f"{self._version}: only the newest ({history.newest}) advances, by its own updates")
            replaced = install(history.levels, update.levels)  # checks the whole update before it writes
            buckets = history.buckets
            for bucket, entries in update.changed.items():
                buckets[bucket] = entries
            history.newest += 1
            history.undos.append(_Undo(history.newest, update.undo, positions, replaced))
            newest = StateTree(history, history.newest, update.root)
        del replaced_buckets
        return newest

    def proof(self, key: bytes) -> StateProof:
        """The proof of ``key``'s record, or of its absence, against this version's root."""
        hashed = hashlib.sha256(key).digest()
        position = bucket_of(hashed)
        history = self._history
        with history.lock:
            if self._version < history.oldest():
                raise VersionGoneError(f"version {self._version} is no longer kept (the oldest is {history.oldest()})")
            later = [undo for undo in reversed(history.undos) if undo.version > self._version]  # newest first
            entries = _bucket_entries(history.buckets[position], position, later)
            siblings = []
            for depth in range(LEVELS, 0, -1):
                first = position - position % FANOUT
                group = _hashes(history.levels[depth], depth, first, later)
                del group[position % FANOUT]
                siblings.append(tuple(group))
                position //= FANOUT
        return StateProof(entries, tuple(siblings))


def _bucket_entries(packed: bytes, position: int, later: list[_Undo]) -> tuple[bytes, ...]:
    """The bucket's entries as they were before the ``later`` blocks (newest first)."""
    entries = {packed[i:i + HASH_SIZE]: packed[i:i + ENTRY_SIZE] for i in range(len(BUCKET_TAG), len(packed),
                                                                                ENTRY_SIZE)}
    for undo in later:
        records = undo.records
        indices = range(len(records) // _UNDO_SIZE)  # in key-hash order, so in bucket order
        bucket = partial(_bucket_of_record, records)
        for at in range(bisect_left(indices, position, key=bucket), bisect_left(indices, position + 1, key=bucket)):
            record = records[at * _UNDO_SIZE:(at + 1) * _UNDO_SIZE]
            if record[HASH_SIZE]:
                entries[record[:HASH_SIZE]] = record[:HASH_SIZE] + record[HASH_SIZE + 1:]
            else:
                entries.pop(record[:HASH_SIZE], None)
    return tuple(entries[hashed] for hashed in sorted(entries))


def _bucket_of_record(records: bytes, at: int) -> int:
    return bucket_of(records[at * _UNDO_SIZE:at * _UNDO_SIZE + 2])


def _hashes(level: bytearray, depth: int, first: int, later: list[_Undo]) -> list[bytes]:
    """The FANOUT hashes of ``level`` from position ``first`` on, as they were before the ``later`` blocks."""
    group = [bytes(level[at * HASH_SIZE:(at + 1) * HASH_SIZE]) for at in range(first, first + FANOUT)]
    for undo in later:
        positions = undo.positions[depth]
        for at in range(bisect_left(positions, first), bisect_left(positions, first + FANOUT)):
            group[positions[at] - first] = undo.hashes[depth][at * HASH_SIZE:(at + 1) * HASH_SIZE]
    return group


def _empty_levels() -> tuple[bytes, ...]:
    levels = [[EMPTY_BUCKET_HASH] * BUCKETS]
    while len(levels[0]) > 1:
        below = levels[0]
        levels.insert(0, [node_hash(below[i:i + FANOUT]) for i in range(0, len(below), FANOUT)])
    return tuple(b"".join(level) for level in levels)


_EMPTY_LEVELS = _empty_levels()
