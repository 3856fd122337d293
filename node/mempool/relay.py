"""Relaying the transactions clients submit to the other validators, in batches.

Relaying each accepted request at once costs every peer a frame, a decode and
a pass through admission and the verifier per request.  With clients that
send a few transfers per request, those fixed costs outgrew the work itself,
and four validators fell behind a load that the same transfers in larger
requests kept up with (docs/performance.md).  So accepted transactions
wait here for at most ``delay_s`` (or until ``max_batch`` have gathered) and
leave together.  The wait adds a few milliseconds to a transaction's trip to
the other validators, far below a block interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from node.p2p.wire import TxBatch

# Transactions per relayed batch at most; the buffer never holds more than this.
MAX_GOSSIP_BATCH = 4096
GOSSIP_DELAY_S = 0.005


class TxGossip:
    """A bounded buffer of accepted transactions, sent as one ``TxBatch`` when full or ``delay_s`` old."""

    def __init__(self, broadcast: Callable[[TxBatch], None], *, delay_s: float = GOSSIP_DELAY_S,
                 max_batch: int = MAX_GOSSIP_BATCH) -> None:
        if max_batch < 1 or delay_s < 0:
            raise ValueError("max_batch must be >= 1 and delay_s >= 0")
        self._broadcast = broadcast
        self._delay_s = delay_s
        self._max_batch = max_batch
        self._pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, raws: Sequence[bytes]) -> None:
        """Queue transactions for the next batch; call on the event loop's thread."""
        for raw in raws:
            self._pending.append(raw)
            if len(self._pending) >= self._max_batch:
                self.flush()
        assert len(self._pending) < self._max_batch, "a full batch leaves at once"
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self.flush)

    def flush(self) -> None:
        """Send what is waiting now (also at shutdown, while the network is still up)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            batch, self._pending = tuple(self._pending), []
            self._broadcast(TxBatch(batch))
