"""The heartbeat: an idle network commits an empty block only every ``empty_block_interval``.

A Tendermint height is decided by proposing something, and a proposer with
nothing pending would otherwise propose an empty block as soon as its short
wait ran out: an idle network committed about two blocks a second, each one
written, logged and kept for ever.  So a height whose block nobody needs
waits, at every validator, before its first round starts in earnest: the
proposer does not build its block, and the others do not start their
propose timeout, until a transaction is pending in this validator's mempool
or the heartbeat is due.  A transaction submitted anywhere reaches every
mempool within milliseconds (node/mempool/relay.py), so it ends the wait
everywhere and commits with the usual latency; the heartbeat alone shows
that an idle network is live.

A block is needed at once, whatever the mempool holds:
* after the genesis, so that a new network shows it is live;
* after a block that carried transactions, because what that block did
  (its app hash and results root) is certified only by the next header,
  which account and transaction proofs need (docs/protocol.md §16).
A round after the first never waits: it means the first one failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass, field

from node.host.tip import Tip

# How often a waiting validator looks at its mempool.
POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class Heartbeat:
    mempool: Sized  # what is pending: the mempool
    interval_s: float  # 0: never wait, every height proposes at once
    clock: Callable[[], float] = field(default=time.monotonic)  # the driver's: its commit times are on it

    def due(self, tip: Tip, round: int, last_commit_at: float) -> float | None:
        """When, on ``clock``, the empty block of ``round`` above ``tip`` is due; None when it may not wait."""
        if self.interval_s <= 0 or round > 0 or tip.height == 0 or tip.tx_count > 0:
            return None
        return last_commit_at + self.interval_s

    async def wait(self, due: float) -> bool:
        """Wait until a transaction is pending or ``due`` has passed; whether one is pending."""
        return await until_pending(self.mempool, due, self.clock)


async def until_pending(mempool: Sized, due: float, clock: Callable[[], float]) -> bool:
    """Wait until ``mempool`` holds a transaction or ``clock`` reaches ``due``; whether it holds one."""
    while not len(mempool):
        left = due - clock()
        if left <= 0:
            return False
        await asyncio.sleep(min(POLL_S, left))
    return True
