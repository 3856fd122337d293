"""The ledger's LevelDB store: committed blocks and the state they produced.

Each committed block goes to disk in ONE ``write_batch(sync=True)`` holding the
state changes, the block, its commit certificate, its receipts, the
transaction index, the height, the app hash and the results root.  LevelDB applies a batch from
its write-ahead log entirely or not at all, so a process killed at any instant
reopens at a block boundary; the in-memory view (height, app hash, supply,
account cache) is updated only after the batch is durable, so it never runs
ahead of the disk.

A block goes in two steps: ``prepare`` executes it against the committed
state without writing (a proposal is judged that way before the prevote), and
``apply`` writes exactly what ``prepare`` returned once the block is decided,
so a block is executed once.  ``apply_block`` does both.

Threads: execution and commits (``prepare``, ``apply``) must be serialised by
the caller, but may run on a worker thread while other threads read
(``account``, ``block``, ``tx_location``, ...): only the executing thread
ever fills or trims the account cache, so a reader can never plant a stale
value in it.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, starmap
from operator import itemgetter
from typing import NamedTuple

import msgpack
import plyvel

from node.core import rfc6962
from node.core.results import EMPTY_RESULTS_ROOT, result_leaf
from node.core.state_proof import StateProof
from node.core.transactions import AnyTransaction
from node.ledger import layout as k
from node.ledger.book import AccountRecord, Book
from node.ledger.errors import (
    LedgerCorruptError,
    LedgerError,
    LedgerHeightError,
    LedgerMismatchError,
    LedgerOpenError,
)
from node.ledger.governance import Governance, ValidatorPowers
from node.ledger.governance_records import changed_records, encode_order, genesis_records, read_governance
from node.ledger.pruning import prune_heights, reclaim
from node.ledger.receipts import (
    BYTE_OF,
    LOCATION,
    NONCE_KEEPING,
    RECEIPT_CODES,
    Receipt,
    ReceiptCode,
    TxLocation,
    count_receipts,
    decode_location,
    decode_receipts,
    encode_receipts,
    encode_waterfall,
)
from node.ledger.state import Execution, GenesisState, Waterfall, execute
from node.ledger.tree import StateTree, TreeUpdate, VersionGoneError

log = logging.getLogger(__name__)

DEFAULT_CACHE_ACCOUNTS = 262_144
# Heights back from the committed one whose state can still be proven (each keeps its tree version
# and a LevelDB snapshot): a light client proves against the last height a later header certifies.
DEFAULT_PROOF_HEIGHTS = 32
# A block's records fill the memtable at random keys (account keys, transaction hashes).  LevelDB's default
# 4 MB would make each insert cheaper on the committing thread, but flushes and compacts every few
# blocks on the background thread, which takes a core from signature checks (docs/performance.md).
_WRITE_BUFFER_BYTES = 64 * 1024 * 1024
_BLOCK_CACHE_BYTES = 64 * 1024 * 1024


class Account(NamedTuple):
    """An account's committed record (node/ledger/book.py says what each field is for)."""

    balance: int
    nonce: int
    tier: int = 0
    flags: int = 0
    day: int = 0
    spent: int = 0


@dataclass(frozen=True, slots=True)
class Supply:
    """Lifetime totals; ``outstanding`` (issued - redeemed) equals the sum of all balances."""

    issued: int
    redeemed: int

    @property
    def outstanding(self) -> int:
        return self.issued - self.redeemed


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What executing a block produced; identical on every honest validator.

    Codes and hashes are kept as flat tuples and ``receipts`` is built on
    demand: ten thousand Receipt objects per block would cost a large share of the
    commit time, and the runtime mostly needs only the codes.
    """

    height: int
    tx_hashes: tuple[bytes, ...]
    codes: tuple[ReceiptCode, ...]
    app_hash: bytes
    results_hash: bytes  # the RFC 6962 root of the block's results: the next header's previous_results_hash

    @property
    def receipts(self) -> tuple[Receipt, ...]:
        return tuple([Receipt(i, h, c) for i, (h, c) in enumerate(zip(self.tx_hashes, self.codes))])


@dataclass(frozen=True, slots=True)
class StateVersion:
    """The state after one committed height, as a prover reads it: its tree, and the records behind it."""

    height: int
    tree: StateTree
    snapshot: plyvel.Snapshot


@dataclass(frozen=True, slots=True)
class StateExport:
    """One height's application records (the state tree's leaves), its root and the store's running totals."""

    height: int
    app_hash: bytes
    tx_count: int
    history_count: int
    snapshot: plyvel.Snapshot
    path: str

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        try:
            for prefix in k.STATE_PREFIXES:
                with self.snapshot.iterator(prefix=prefix, verify_checksums=True) as records:
                    yield from records
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    """An executed, not yet written block: it can be applied only while the ledger is at ``height - 1``."""

    height: int
    hashes: tuple[bytes, ...]
    execution: Execution
    records: list[tuple[bytes, bytes | None]]
    accounts: list[bytes]  # the records of ``execution.written``'s accounts, in its order, as the cache keeps them
    tree: TreeUpdate

    @property
    def app_hash(self) -> bytes:
        return self.tree.root


class LedgerStore:
    """Open with ``LedgerStore.open``; a fresh directory is initialised from the genesis given."""

    def __init__(self, db: plyvel.DB, path: str, cache_accounts: int, proof_heights: int) -> None:
        assert proof_heights >= 1, "the committed height's state is always provable"
        self._db = db
        self.path = path
        # Each cached account as stored (k.ACCOUNT_VALUE): a commit's records are what it caches, and one
        # bytes object is cheaper than a tuple of six ints to replace in a dict of a million.
        self._cache: dict[bytes, bytes] = {}
        self._cache_limit = cache_accounts
        self._proof_heights = proof_heights
        try:
            meta = {key: db.get(key, verify_checksums=True) for key in (
                k.META_CHAIN_ID, k.META_GENESIS_HASH, k.META_HEIGHT, k.META_APP_HASH, k.SUPPLY,
                k.META_HISTORY_COUNT, k.META_RESULTS_HASH)}
            if any(value is None for value in meta.values()):
                raise LedgerCorruptError(f"ledger store {path} lacks chain meta records")
            self.chain_id = meta[k.META_CHAIN_ID].decode("utf-8")
            self.genesis_hash: bytes = meta[k.META_GENESIS_HASH]
            self._height = k.decode_height(meta[k.META_HEIGHT])
            self._app_hash: bytes = meta[k.META_APP_HASH]
            self._results_hash: bytes = meta[k.META_RESULTS_HASH]
            self._supply = Supply(*k.decode_supply(meta[k.SUPPLY]))
            tx_count = db.get(k.META_TX_COUNT, verify_checksums=True)
            if len(self.genesis_hash) != 32 or len(self._app_hash) != 32 or len(self._results_hash) != 32 \
                    or (tx_count is not None and len(tx_count) != k.COUNT_SIZE):
                raise LedgerCorruptError(f"ledger store {path} has meta records of the wrong size")
            self._governance, self._schedule = read_governance(db)
            self._history_count = k.decode_count(meta[k.META_HISTORY_COUNT])
            # Stores written before the count was kept lack it: their receipts give it, until the next block.
            self._tx_count = k.decode_count(tx_count) if tx_count is not None else self._count_receipts()
            earliest = db.get(k.META_EARLIEST, verify_checksums=True)
            self._earliest = 1 if earliest is None else k.decode_height(earliest)
            # A store restored from a snapshot at height s keeps block s, as its tip, but nothing of
            # the block beyond it, so its earliest kept height is s + 1 (node/ledger/restore.py).
            if not 1 <= self._earliest <= self._height + 1:
                raise LedgerCorruptError(f"ledger store {path} keeps blocks from height {self._earliest}, "
                                         f"beyond its height {self._height}")
            if self._height and db.get(k.block_key(self._height), verify_checksums=True) is None:
                raise LedgerCorruptError(f"ledger store {path} is at height {self._height} but lacks that block")
        except (plyvel.CorruptionError, UnicodeDecodeError, ValueError, struct.error) as exc:
            raise LedgerCorruptError(f"ledger store {path} has damaged meta records: {_said(exc)}") from exc
        snapshot = db.snapshot()
        tree = StateTree.build(self._read_state(snapshot), kept=proof_heights)
        if tree.root != self._app_hash:
            raise LedgerCorruptError(
                f"ledger store {path}: the state records hash to {tree.root.hex()}, not to the app hash "
                f"{self._app_hash.hex()} of height {self._height}: a record is damaged or missing")
        # Newest last; replaced whole, never changed in place, so a reader on another thread sees a version.
        self._versions: tuple[StateVersion, ...] = (StateVersion(self._height, tree, snapshot),)

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], genesis: GenesisState, *,
             cache_accounts: int = DEFAULT_CACHE_ACCOUNTS, proof_heights: int = DEFAULT_PROOF_HEIGHTS) -> LedgerStore:
        """Open the store at ``path``, creating it from ``genesis`` if the directory holds none.

        An existing store must belong to ``genesis.chain_id`` and ``genesis.genesis_hash``:
        a node pointed at another chain's data must stop, not extend it.
        """
        path = os.fspath(path)
        db = _open_db(path)
        try:
            schema = db.get(k.META_SCHEMA, verify_checksums=True)
            if schema is None:
                if next(db.iterator(include_value=False), None) is not None:
                    raise LedgerCorruptError(f"{path} holds data but no ledger schema record")
                _write_genesis(db, genesis)
                log.info("ledger.init path=%s chain_id=%s height=0", path, genesis.chain_id)
            elif schema != k.SCHEMA_VERSION:
                raise LedgerCorruptError(f"{path} has ledger schema {schema!r}; expected {k.SCHEMA_VERSION!r} "
                                         f"(stores of an older schema are not migrated: a chain started by this "
                                         f"release begins from a fresh data directory)")
            store = cls(db, path, cache_accounts, proof_heights)
            if store.chain_id != genesis.chain_id or store.genesis_hash != genesis.genesis_hash:
                raise LedgerMismatchError(
                    f"ledger store {path} belongs to chain {store.chain_id!r} with genesis hash "
                    f"{store.genesis_hash.hex()}, not chain {genesis.chain_id!r} with genesis hash "
                    f"{genesis.genesis_hash.hex()}")
        except (plyvel.CorruptionError, plyvel.IOError) as exc:
            # A damaged table file can also fail as an I/O error (a size or offset read from the damage).
            db.close()
            raise LedgerCorruptError(f"ledger store {path} is corrupted or unreadable: {_said(exc)}") from exc
        except BaseException:
            db.close()
            raise
        log.info("ledger.open path=%s chain_id=%s height=%d app_hash=%s",
                 path, store.chain_id, store.height, store.app_hash.hex())
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def app_hash(self) -> bytes:
        return self._app_hash

    @property
    def results_hash(self) -> bytes:
        """The results root of the committed tip's block (the empty root at height 0)."""
        return self._results_hash

    def supply(self) -> Supply:
        return self._supply

    @property
    def governance(self) -> Governance:
        """The board, issuer, banks and latest validator set after the committed height."""
        return self._governance

    def validators_at(self, height: int) -> tuple[int, ValidatorPowers]:
        """The validator set in effect at ``height`` and the height from which it holds.

        Known for every height up to the committed height plus two (a change
        committed at H holds from H+2).
        """
        assert 1 <= height <= self._height + 2, f"the set of height {height} is not decided yet"
        schedule = self._schedule
        position = bisect.bisect_right(schedule, height, key=lambda entry: entry[0]) - 1
        assert position >= 0, "the genesis set holds from height 1"
        return schedule[position]

    def validator_schedule(self) -> tuple[tuple[int, ValidatorPowers], ...]:
        """Every validator set the chain has had, with the height from which each holds."""
        return tuple(self._schedule)

    @property
    def governance_history_size(self) -> int:
        """How many governance transactions blocks have applied: the history's next number."""
        return self._history_count

    def governance_history(self, after: int = -1, limit: int = 100) -> list[tuple[int, int, int, ReceiptCode, bytes]]:
        """Applied governance transactions from number ``after`` + 1 on: (number, height, index, code, bytes)."""
        found = []
        try:
            with self._db.iterator(start=k.history_key(after + 1), stop=k.prefix_end(k.HISTORY),
                                   verify_checksums=True) as entries:
                for key, value in entries:
                    height, index, code, raw = msgpack.unpackb(value, raw=False)
                    found.append((k.decode_height(key[1:]), height, index, RECEIPT_CODES[code], raw))
                    if len(found) >= limit:
                        break
        except (plyvel.CorruptionError, ValueError, IndexError) as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: governance history: {_said(exc)}") from exc
        return found

    @property
    def committed_txs(self) -> int:
        """Transactions in every committed block, failed ones included: what the chain has carried."""
        return self._tx_count

    def account(self, public_key: bytes) -> Account | None:
        """The committed account, or None when the key has none (it never held som nor was registered).

        Safe from any thread while another commits: it reads the cache but
        never fills it, since a value read from disk just before a commit and
        cached just after it would stay stale and fork this validator's state.
        """
        stored = self._cache.get(public_key)
        if stored is None:
            stored = self._get(k.ACCOUNT + public_key)
            if stored is None:
                return None
        try:
            return Account(*k.ACCOUNT_VALUE.unpack(stored))
        except struct.error as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: account {public_key.hex()}: {_said(exc)}") from exc

    def standing(self, public_key: bytes) -> tuple[int, int, int, int]:
        """(balance, nonce, tier, flags) as admission judges a sender: an absent account is all zeros."""
        found = self.account(public_key)
        return (0, 0, 0, 0) if found is None else (found.balance, found.nonce, found.tier, found.flags)

    def registration(self, public_key: bytes) -> tuple[bytes, bytes] | None:
        """The wallet's committed registration: (registering bank or b"" for the board, linked account or b"")."""
        raw = self._get(k.registration_key(public_key))
        return None if raw is None else _registration(raw)

    def orders(self, public_key: bytes) -> list[tuple[int, int, list[object]]]:
        """The legal orders applied to the account, oldest first: (height, index, the order's fields)."""
        prefix = k.ORDER + public_key
        try:
            with self._db.iterator(prefix=prefix, verify_checksums=True) as entries:
                return [(k.decode_height(key[len(prefix):len(prefix) + 8]),
                         int.from_bytes(key[len(prefix) + 8:], "big"), msgpack.unpackb(value, raw=False))
                        for key, value in entries]
        except (plyvel.CorruptionError, ValueError) as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: orders of {public_key.hex()}: {_said(exc)}") from exc

    def provable_heights(self) -> tuple[int, int]:
        """The lowest and highest heights whose state this store can still prove."""
        versions = self._versions
        return versions[0].height, versions[-1].height

    def state_proof(self, key: bytes, height: int) -> tuple[bytes | None, StateProof, bytes]:
        """The record ``key`` after block ``height`` (None: absent), its proof, and the root it proves to.

        Safe from any thread: the record comes from that height's LevelDB snapshot, and the tree
        proves a kept version under its lock while commits go on.  Raises
        LedgerHeightError for a height outside ``provable_heights()``.
        """
        versions = self._versions
        found = next((version for version in versions if version.height == height), None)
        if found is None:
            raise LedgerHeightError(f"the state of height {height} is not kept: this node proves heights "
                                    f"{versions[0].height} to {versions[-1].height}")
        try:
            value = found.snapshot.get(key, verify_checksums=True)
            proof = found.tree.proof(key)
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc
        except VersionGoneError as exc:  # a commit on another thread moved the window on meanwhile
            raise LedgerHeightError(f"the state of height {height} is no longer kept: {exc}") from exc
        return value, proof, found.tree.root

    def state_export(self) -> StateExport:
        """The committed height's state, to be read on another thread while blocks go on committing.

        Its records are read from that version's LevelDB snapshot, which lives as long as the export
        does; the store must stay open until the reading ends.
        """
        version = self._versions[-1]
        return StateExport(version.height, version.tree.root, self._tx_count, self._history_count,
                           version.snapshot, self.path)

    @property
    def earliest_height(self) -> int:
        """The lowest height whose block, certificate, receipts and index entries are kept (1: all of them)."""
        return self._earliest

    def block(self, height: int) -> bytes | None:
        return self._get(k.block_key(height))

    def certificate(self, height: int) -> bytes | None:
        return self._get(k.certificate_key(height))

    def receipts(self, height: int) -> tuple[Receipt, ...] | None:
        raw = self._get(k.receipts_key(height))
        try:
            return None if raw is None else decode_receipts(raw)
        except ValueError as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: receipts of block {height}: {_said(exc)}") from exc

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        raw = self._get(k.tx_key(tx_hash))
        try:
            return None if raw is None else decode_location(raw)
        except (ValueError, struct.error) as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: index of tx {tx_hash.hex()}: {_said(exc)}") from exc

    def iter_accounts(self) -> Iterator[tuple[bytes, Account]]:
        """Every account in key order, streamed from a snapshot: for audits and tests, not the hot path."""
        try:
            with self._db.snapshot() as snapshot, \
                    snapshot.iterator(prefix=k.ACCOUNT, verify_checksums=True) as accounts:
                for key, value in accounts:
                    yield key[1:], Account(*k.ACCOUNT_VALUE.unpack(value))
        except (plyvel.CorruptionError, struct.error) as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc

    def scrub(self, stopping: Callable[[], bool], records_per_check: int = 4096) -> int | None:
        """Read every record with checksums verified; the number read, or None if told to stop.

        ``stopping`` is called after every ``records_per_check`` records (it may
        pause there) and stops the pass by returning True.

        Opening reads only the meta records, so a damaged table block can sit
        unnoticed until an old block is served or an account is read.  A full
        checksummed pass finds it while the validator is young and a backup
        is close; it runs from a snapshot, so commits carry on beside it.
        """
        read = 0
        try:
            with self._db.snapshot() as snapshot, \
                    snapshot.iterator(verify_checksums=True, fill_cache=False) as records:
                for _ in records:
                    read += 1
                    if read % records_per_check == 0 and stopping():
                        return None
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc
        return read

    # -- pruning -----------------------------------------------------------

    def prune(self, below: int, stopping: Callable[[], bool] = lambda: False) -> int:
        """Delete every block below ``below`` (never the committed one) and compact what held them;
        the number of heights deleted.  ``stopping`` is asked after each batch (it may pause there);
        told to stop, the pass ends without compacting.

        Safe beside ``apply`` on another thread: a block is pruned long after it was committed, and
        an index entry is deleted only while it names the pruned height, which a later block never
        rewrites (an inclusion that keeps its nonce makes a block invalid).  Readers see the new
        earliest height as each batch is written."""
        below = min(below, self._height)
        first = self._earliest
        if below <= first:
            return 0
        try:
            stopped = False
            for earliest in prune_heights(self._db, first, below):
                self._earliest = earliest
                if stopping():
                    stopped = True
                    break
            if not stopped:
                reclaim(self._db, self._earliest)
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc
        except (ValueError, struct.error) as exc:
            raise LedgerCorruptError(f"ledger store {self.path}: a pruned block's records: {_said(exc)}") from exc
        except plyvel.Error as exc:
            raise LedgerError(f"ledger store {self.path} could not prune below {below}: {_said(exc)}") from exc
        log.info("ledger.pruned below=%d heights=%d", self._earliest, self._earliest - first)
        return self._earliest - first

    # -- executing ---------------------------------------------------------

    def prepare(self, txs: Sequence[AnyTransaction], time_ms: int = 0) -> PreparedBlock:
        """Execute ``txs`` as the next block, made at ``time_ms``, without writing anything."""
        hashes = tuple([stx.hash for stx in txs])
        execution = self._execute(txs, time_ms)
        accounts = list(starmap(k.ACCOUNT_VALUE.pack, execution.written.values()))
        records = _state_records(execution, accounts, self._height + 1)
        return PreparedBlock(self._height + 1, hashes, execution, records, accounts,
                             self._versions[-1].tree.prepare(records))

    def apply_block(self, height: int, txs: Sequence[AnyTransaction],
                    block_bytes: bytes, certificate_bytes: bytes, time_ms: int = 0) -> BlockResult:
        """Execute and durably commit block ``height``, which must follow the current height."""
        if height != self._height + 1:
            raise LedgerHeightError(f"block {height} offered at ledger height {self._height}")
        return self.apply(self.prepare(txs, time_ms), block_bytes, certificate_bytes)

    def apply(self, prepared: PreparedBlock, block_bytes: bytes, certificate_bytes: bytes) -> BlockResult:
        """Durably commit a block ``prepare`` executed on the current state."""
        height = prepared.height
        if height != self._height + 1:
            raise LedgerHeightError(f"block {height} prepared for another height; the ledger is at {self._height}")
        if not self._versions[-1].tree.accepts(prepared.tree):
            raise LedgerHeightError(f"block {height} was prepared on another state than this store's at height "
                                    f"{self._height}")
        execution, app_hash, hashes = prepared.execution, prepared.app_hash, prepared.hashes
        codes = execution.codes
        db = self._db
        # An explicit write(), never the context manager: plyvel's ``with`` block
        # writes whatever was put so far when an exception escapes it.  The records and index entries go
        # in key order: LevelDB inserts each into its memtable, a skip list of up to 64 MB, and inserts in
        # key order walk the nodes the one before walked, where random ones miss the CPU's cache ever more
        # often as the memtable fills (docs/performance.md, "The tree's buckets hashed as they are merged").
        batch = db.write_batch(sync=True)
        put = batch.put
        delete = batch.delete
        for key, value in sorted(prepared.records, key=_KEY):
            if value is None:
                delete(key)
            else:
                put(key, value)
        put(k.block_key(height), block_bytes)
        put(k.certificate_key(height), certificate_bytes)
        put(k.receipts_key(height), encode_receipts(hashes, codes))
        for key, value in sorted(self._index_records(height, hashes, codes, execution.waterfalls), key=_KEY):
            put(key, value)
        put(k.META_HEIGHT, k.encode_height(height))
        put(k.META_APP_HASH, app_hash)
        results_hash = _results_root(hashes, codes, execution.waterfalls)
        put(k.META_RESULTS_HASH, results_hash)
        put(k.META_TX_COUNT, k.encode_count(self._tx_count + len(hashes)))
        changes = execution.governance
        recorded = self._history_count
        if changes is not None:
            for applied in changes.applied:
                put(k.history_key(recorded),
                    msgpack.packb([height, applied.index, BYTE_OF[applied.code], applied.raw], use_bin_type=True))
                recorded += 1
            put(k.META_HISTORY_COUNT, k.encode_count(recorded))
        try:
            batch.write()
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc
        except plyvel.Error as exc:
            # Nothing was applied, on disk or in memory: the block may be retried once the cause is fixed.
            raise LedgerError(f"ledger store {self.path} could not write block {height}: {_said(exc)}") from exc
        self._cache.update(zip(execution.written, prepared.accounts, strict=True))
        self._trim_cache()
        self._supply = Supply(execution.issued, execution.redeemed)  # one assignment: readers never see half
        if changes is not None:
            governance = changes.result()
            if governance.validators_from != self._governance.validators_from:
                self._schedule.append((governance.validators_from, governance.validators))
            self._governance = governance
            self._history_count = recorded
        self._app_hash = app_hash
        self._results_hash = results_hash
        self._tx_count += len(hashes)
        self._height = height
        version = StateVersion(height, self._versions[-1].tree.advance(prepared.tree), db.snapshot())
        self._versions = (*self._versions, version)[-self._proof_heights:]
        log.debug("ledger.commit height=%d txs=%d accounts_written=%d app_hash=%s",
                  height, len(hashes), len(execution.written), app_hash.hex())
        return BlockResult(height, hashes, _code_names(codes), app_hash, results_hash)

    # -- internals ---------------------------------------------------------

    def _execute(self, txs: Sequence[AnyTransaction], time_ms: int) -> Execution:
        try:
            supply = self._supply
            execution = execute(txs, Book(self._lookup, self.registration), self._governance, self._height + 1,
                                time_ms, supply.issued, supply.redeemed)
        except (plyvel.CorruptionError, struct.error) as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc
        self._trim_cache()
        return execution

    def _read_state(self, snapshot: plyvel.Snapshot) -> Iterator[tuple[bytes, bytes]]:
        """Every application record (node/ledger/layout.py), the leaves of the state tree, in one pass
        that also fills the account cache: a block's first payments then find their accounts in memory."""
        cache, room, size = self._cache, self._cache_limit, k.ACCOUNT_VALUE.size
        try:
            for prefix in k.STATE_PREFIXES:
                with snapshot.iterator(prefix=prefix, verify_checksums=True) as records:
                    for key, value in records:
                        if prefix == k.ACCOUNT:
                            if len(value) != size:
                                raise LedgerCorruptError(f"ledger store {self.path}: an account record is "
                                                         f"{len(value)} bytes, not {size} (account {key[1:].hex()})")
                            if len(cache) < room:
                                cache[key[1:]] = value
                        yield key, value
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc

    def _lookup(self, public_key: bytes) -> AccountRecord | None:
        """Committed account record through the cache, filling it: for the committing thread only."""
        stored = self._cache.get(public_key)
        if stored is not None:
            return k.ACCOUNT_VALUE.unpack(stored)
        stored = self._get(k.ACCOUNT + public_key)
        if stored is None:
            return None
        record = k.ACCOUNT_VALUE.unpack(stored)  # a damaged record raises here, before it is cached
        self._cache[public_key] = stored
        return record

    def _index_records(self, height: int, hashes: tuple[bytes, ...], codes: bytearray,
                       waterfalls: dict[int, Waterfall]) -> list[tuple[bytes, bytes]]:
        """Transaction index entries: an outcome that consumed the nonce always wins.

        A transaction that changed nothing (bad nonce, unknown account) may be
        included again later and then succeed; the index must then say so, and
        must never let a later no-op inclusion hide an earlier real outcome.
        """
        records: dict[bytes, bytes] = {}
        pack = LOCATION.pack
        prefix = k.TX_INDEX
        for index, tx_hash in enumerate(hashes):
            code = codes[index]
            key = prefix + tx_hash
            if code in NONCE_KEEPING and (key in records or self._get(key) is not None):
                continue
            records[key] = pack(height, index, code)
        for index, waterfall in waterfalls.items():
            records[prefix + hashes[index]] += encode_waterfall(waterfall.credited, waterfall.passed_on,
                                                                waterfall.linked)
        return list(records.items())

    def _count_receipts(self) -> int:
        with self._db.iterator(prefix=k.RECEIPTS, include_key=False, verify_checksums=True) as receipts:
            return sum(count_receipts(raw) for raw in receipts)

    def _trim_cache(self) -> None:
        """Evict the oldest-loaded accounts once over the bound, an eighth at a time to amortise."""
        excess = len(self._cache) - self._cache_limit
        if excess > 0:
            cache = self._cache
            for public_key in list(islice(cache, excess + self._cache_limit // 8)):
                del cache[public_key]

    def _get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True)
            return value
        except plyvel.CorruptionError as exc:
            raise LedgerCorruptError(f"ledger store {self.path} is corrupted: {_said(exc)}") from exc


def _said(exc: Exception) -> str:
    """An error's text for an operator: plyvel carries LevelDB's message as bytes."""
    if exc.args and isinstance(exc.args[0], bytes):
        return exc.args[0].decode("utf-8", errors="replace")
    return str(exc)


def stored_height(path: str | os.PathLike[str]) -> int:
    """The height a ledger store at ``path`` holds (0 for a store with no height record yet), read without
    opening it as a ledger, which rebuilds the whole state tree."""
    db = _open_db(os.fspath(path))
    try:
        raw = db.get(k.META_HEIGHT, verify_checksums=True)
        return 0 if raw is None else k.decode_height(raw)
    except (plyvel.CorruptionError, struct.error) as exc:
        raise LedgerCorruptError(f"ledger store {path} has a damaged height record: {_said(exc)}") from exc
    finally:
        db.close()


def _open_db(path: str) -> plyvel.DB:
    try:
        return plyvel.DB(
            path, create_if_missing=True, paranoid_checks=True, bloom_filter_bits=10,
            write_buffer_size=_WRITE_BUFFER_BYTES, lru_cache_size=_BLOCK_CACHE_BYTES,
        )
    except plyvel.CorruptionError as exc:
        raise LedgerCorruptError(f"ledger store {path} is corrupted: {_said(exc)}") from exc
    except plyvel.IOError as exc:
        # LevelDB says "lock <path>/LOCK: already held by process" (or EAGAIN's text) only for a held lock.
        held = " (is another node using it?)" if re.search(r"\block \S+: (already held|Resource temporarily)",
                                                          _said(exc)) else ""
        raise LedgerOpenError(f"cannot open ledger store {path}{held}: {_said(exc)}") from exc
    except plyvel.Error as exc:
        raise LedgerOpenError(f"cannot open ledger store {path}: {_said(exc)}") from exc


def _write_genesis(db: plyvel.DB, genesis: GenesisState) -> None:
    """Write the genesis state and meta in one batch, so a store is either absent or complete."""
    supply = genesis.supply
    written: list[tuple[bytes, bytes | None]] = sorted(
        [(k.account_key(key), k.ACCOUNT_VALUE.pack(*account)) for key, account in genesis.accounts().items()]
        + [(k.SUPPLY, k.encode_supply(supply, 0))]
        + genesis_records(genesis.governance())
        # A wallet the genesis puts in a tier is the board's registration: no bank may take it over.
        + [(k.registration_key(key), msgpack.packb([b"", b""], use_bin_type=True))
           for key, _ in genesis.account_tiers]
    )
    records = [(key, value) for key, value in written if value is not None]
    assert len(records) == len(written), "the genesis deletes nothing"
    app_hash = StateTree.build(records).root
    batch = db.write_batch(sync=True)
    for key, value in records:
        batch.put(key, value)
    batch.put(k.META_CHAIN_ID, genesis.chain_id.encode("utf-8"))
    batch.put(k.META_GENESIS_HASH, genesis.genesis_hash)
    batch.put(k.META_HEIGHT, k.encode_height(0))
    batch.put(k.META_APP_HASH, app_hash)
    batch.put(k.META_RESULTS_HASH, EMPTY_RESULTS_ROOT)
    batch.put(k.META_TX_COUNT, k.encode_count(0))
    batch.put(k.META_HISTORY_COUNT, k.encode_count(0))
    batch.put(k.META_SCHEMA, k.SCHEMA_VERSION)
    batch.write()
    # The genesis batch is one memtable however large (a million accounts: some 150 MB).  Compacted now,
    # while nothing waits, not on LevelDB's background thread beside the first blocks' commits (with a
    # small write buffer, that flush held the second block's write up for seconds).
    db.compact_range()


def _state_records(execution: Execution, accounts: list[bytes], height: int) -> list[tuple[bytes, bytes | None]]:
    """The block's state changes as (key, value) records, each key once; a value of None deletes.
    ``accounts`` are the written accounts' records, in ``execution.written``'s order.

    In no particular order: the tree places a record by its key alone, and ``apply`` puts them in key order.
    """
    records: list[tuple[bytes, bytes | None]] = list(zip(map(k.ACCOUNT.__add__, execution.written), accounts))
    records.append((k.SUPPLY, k.encode_supply(execution.issued, execution.redeemed)))
    registrations = execution.book.registrations
    changes = execution.governance
    if registrations or changes is not None:
        records.extend((k.registration_key(key), msgpack.packb([bank, linked], use_bin_type=True))
                       for key, (bank, linked) in registrations.items())
        if changes is not None:
            records.extend(changed_records(changes.base, changes.result()))
            records.extend((k.order_key(account, height, index), encode_order(order))
                           for account, index, order in changes.orders)
    return records


def _results_root(hashes: tuple[bytes, ...], codes: bytearray, waterfalls: dict[int, Waterfall]) -> bytes:
    """The RFC 6962 root over the block's results, one leaf per transaction (node/core/results.py).

    Every validator computes it for every block, so the common leaf (hash and code) is built inline.
    """
    leaves = [tx_hash + _CODE_BYTES[code] for tx_hash, code in zip(hashes, codes, strict=True)]
    for index, found in waterfalls.items():
        leaves[index] = result_leaf(hashes[index], codes[index], (found.credited, found.passed_on, found.linked))
    return rfc6962.root(leaves)


_CODE_BYTES = [bytes((code,)) for code in range(256)]
_KEY = itemgetter(0)


def _registration(raw: bytes) -> tuple[bytes, bytes]:
    """A registration record: msgpack [registering bank or empty, linked account or empty]."""
    fields = msgpack.unpackb(raw, raw=False, use_list=True)
    if not (isinstance(fields, list) and len(fields) == 2 and all(type(f) is bytes for f in fields)):
        raise LedgerCorruptError("a registration record is [bank, linked]")
    return fields[0], fields[1]


def _code_names(codes: bytearray) -> tuple[ReceiptCode, ...]:
    return tuple(map(RECEIPT_CODES.__getitem__, codes))
