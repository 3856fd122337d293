"""Committing a decided block: the ledger write, the mempool, and the listeners.

The block applied is exactly the ``CheckedBlock`` that validity produced for
the decided value: its execution is written as it is, never recomputed.  The
write is one synced LevelDB batch (node/ledger/store.py) on a worker thread;
only after it returns do the mempool, the listeners (the API's event feed,
the metrics) and the new tip see the block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from node.core.block import Block
from node.core.certificate import encode_certificate
from node.core.transactions import AnyTransaction
from node.host.tip import Tip, tip_of
from node.host.validity import CheckedBlock
from node.ledger.store import BlockResult, LedgerStore
from node.mempool.pool import Mempool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    """What a commit hands to the listeners: the block, its certificate and what applying it produced."""

    height: int
    block: Block
    block_hash: bytes
    certificate: CommitCertificate
    result: BlockResult
    txs: tuple[AnyTransaction, ...]
    interval_s: float  # since the previous commit this process saw


CommitListener = Callable[[Committed], None]


class Committer:
    def __init__(self, store: LedgerStore, mempool: Mempool, listeners: Sequence[CommitListener]) -> None:
        self._store = store
        self._mempool = mempool
        self._listeners = tuple(listeners)

    async def commit(self, checked: CheckedBlock, certificate: CommitCertificate, interval_s: float) -> Tip:
        """Durably apply ``checked``, decided by ``certificate``; return the new tip."""
        assert certificate.value_id == checked.value_id, "the certificate decides this block"
        result = await asyncio.to_thread(
            self._store.apply, checked.prepared, checked.value, encode_certificate(certificate))
        self._mempool.update(checked.txs, checked.prepared.execution.book.written)
        block = checked.block
        height = block.header.height
        log.info("consensus.commit height=%d round=%d txs=%d app_hash=%s",
                 height, certificate.round, len(checked.txs), result.app_hash.hex())
        committed = Committed(height, block, checked.value_id, certificate, result, checked.txs, interval_s)
        for listener in self._listeners:
            listener(committed)
        return tip_of(self._store, checked.value_id, block.header.time_ms, len(checked.txs))
