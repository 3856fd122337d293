"""Proposing: when this validator's block is worth proposing, and building it.

The engine asks for a value (``RequestValue``, the paper's getValue()) the
moment this validator becomes the round's proposer.  Proposing at once on an
empty mempool would commit empty blocks as fast as the network allows; under
load, proposing at once commits many small blocks, each paying the per-block
costs (fsync'd write-ahead log and ledger writes, consensus steps, the event
feed) for few transfers.  So the proposer waits until the mempool holds a
full block; or until ``block_interval_s`` has passed since the previous
commit and something is pending; and in any case no longer than
``empty_block_wait_s``.  Both waits stay well inside the other validators'
propose timeout.  A height whose block nobody needs (node/host/heartbeat.py)
first waits, as every validator does, for a transaction or the heartbeat.

Waiting happens in a task of its own; when it ends, the proposer tells the
host's single writer, which builds the block on the tip it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from node.core.block import Block, build_block
from node.core.transactions import AnyTransaction
from node.host.heartbeat import POLL_S, until_pending
from node.host.tip import Tip
from node.mempool.pool import Mempool


class Proposer:
    def __init__(self, mempool: Mempool, chain_id: str, *, max_block_txs: int,
                 max_block_bytes: int, empty_block_wait_s: float, block_interval_s: float,
                 ready: Callable[[int, int], None], clock: Callable[[], float] = time.monotonic) -> None:
        """``ready(height, round)`` is called when the wait for a block worth proposing is over."""
        self._mempool = mempool
        self._chain_id = chain_id
        self._max_txs = max_block_txs
        self._max_bytes = max_block_bytes
        self._empty_wait_s = empty_block_wait_s
        self._interval_s = block_interval_s
        self._ready = ready
        self._clock = clock
        self._waiting: set[asyncio.Task[None]] = set()

    def schedule(self, height: int, round: int, last_commit_at: float, heartbeat_due: float | None = None) -> None:
        """Start waiting for a block worth proposing at (height, round).  ``heartbeat_due``: the height may
        wait for a transaction until then (node/host/heartbeat.py).  Both times are on ``clock``."""
        task = asyncio.create_task(self._wait(height, round, last_commit_at, heartbeat_due),
                                   name=f"propose-{height}-{round}")
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def abandon(self) -> None:
        """A height was decided: waits for it are pointless (their answer would be ignored), so they go."""
        for task in self._waiting:
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._waiting)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _wait(self, height: int, round: int, last_commit_at: float, heartbeat_due: float | None) -> None:
        mempool = self._mempool
        if heartbeat_due is not None and not await until_pending(mempool, heartbeat_due, self._clock):
            self._ready(height, round)  # the heartbeat: nothing came, the empty block goes now
            return
        waited = 0.0
        while waited < self._empty_wait_s:
            pending = len(mempool)
            full = pending >= self._max_txs or mempool.size_bytes >= self._max_bytes
            if full or (pending and self._clock() - last_commit_at >= self._interval_s):
                break
            await asyncio.sleep(POLL_S)
            waited += POLL_S
        self._ready(height, round)

    def build(self, tip: Tip, proposer: bytes, now_ms: int) -> tuple[bytes, Block, list[AnyTransaction]]:
        """The next block on ``tip`` from the mempool: (value, block, its transactions)."""
        return self._block(tip, proposer, now_ms, self._mempool.reap(self._max_txs, self._max_bytes))

    def build_empty(self, tip: Tip, proposer: bytes, now_ms: int) -> tuple[bytes, Block, list[AnyTransaction]]:
        """The next block on ``tip`` without transactions: valid whatever the mempool holds."""
        return self._block(tip, proposer, now_ms, [])

    def _block(self, tip: Tip, proposer: bytes, now_ms: int,
               txs: list[AnyTransaction]) -> tuple[bytes, Block, list[AnyTransaction]]:
        block = block_on(tip, self._chain_id, proposer, max(now_ms, tip.time_ms), [stx.raw for stx in txs])
        return block.encode(), block, txs


def block_on(tip: Tip, chain_id: str, proposer: bytes, time_ms: int, txs: Sequence[bytes]) -> Block:
    """The block of height ``tip.height + 1`` over ``txs``: its header names what ``tip`` says the next
    block must (parent, app hash, results root, the next height's validator set)."""
    return build_block(
        chain_id=chain_id, height=tip.height + 1, time_ms=time_ms, proposer=proposer,
        previous_block_hash=tip.block_hash, previous_app_hash=tip.app_hash,
        previous_results_hash=tip.results_hash, next_validators_hash=tip.next_validators_hash, txs=txs)
