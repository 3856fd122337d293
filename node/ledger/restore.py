"""Writing a ledger store from a verified snapshot instead of from the genesis.

State sync (node/statesync/) hands over the records of height s chunk by
chunk, each already checked against the certified app hash, then block s,
whose hash the next certified header names.  The records go in unsynced batches; the meta records, the
block and the schema record go last, in one synced batch.  Until that batch
is written the directory holds data but no schema record, which
``LedgerStore.open`` refuses, so a restore cut short is never taken for a
ledger: state sync writes into a directory of its own and moves it into place
only once it is whole.

The restored store keeps block s as its tip (the next block names it as its
parent) but not its certificate, receipts or index entries, so its earliest
kept height is s + 1, as if every block up to s had been pruned.  The governance history and
the count of committed transactions continue from the snapshot's counters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import plyvel

from node.ledger import layout as k
from node.ledger.errors import LedgerError
from node.ledger.state import GenesisState


class LedgerRestore:
    """A store being written from a snapshot; ``finish`` makes it a ledger, ``close`` abandons it."""

    def __init__(self, path: str | os.PathLike[str], genesis: GenesisState) -> None:
        self.path = os.fspath(path)
        self._genesis = genesis
        try:
            self._db = plyvel.DB(self.path, create_if_missing=True, error_if_exists=True)
        except plyvel.Error as exc:
            raise LedgerError(f"cannot create a ledger store at {self.path} to restore into: {exc}") from exc
        self.records = 0

    def add(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        """Write verified state records (unsynced: the final batch syncs them all)."""
        batch = self._db.write_batch()
        for key, value in records:
            assert key[:1] in k.STATE_PREFIXES, "only state records come from a snapshot"
            batch.put(key, value)
            self.records += 1
        batch.write()

    def finish(self, *, height: int, app_hash: bytes, results_hash: bytes, tx_count: int, history_count: int,
               block: bytes) -> None:
        """Write block ``height`` as the tip with the meta records of its state, synced, and close."""
        assert height >= 1 and len(app_hash) == 32 and len(results_hash) == 32, "a restore is of a committed height"
        batch = self._db.write_batch(sync=True)
        batch.put(k.META_CHAIN_ID, self._genesis.chain_id.encode("utf-8"))
        batch.put(k.META_GENESIS_HASH, self._genesis.genesis_hash)
        batch.put(k.META_HEIGHT, k.encode_height(height))
        batch.put(k.META_APP_HASH, app_hash)
        batch.put(k.META_RESULTS_HASH, results_hash)
        batch.put(k.META_TX_COUNT, k.encode_count(tx_count))
        batch.put(k.META_HISTORY_COUNT, k.encode_count(history_count))
        batch.put(k.META_EARLIEST, k.encode_height(height + 1))
        batch.put(k.block_key(height), block)
        batch.put(k.META_SCHEMA, k.SCHEMA_VERSION)
        batch.write()
        self._db.close()

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
