"""Re-gossip: the verified messages of the height being decided, sent again and again.

A validator re-sends every message of its current height it holds (its own
and those it received, the first one per sender and slot) every
``interval_s``, with its committed height.  That is how a validator that
missed messages (a dropped link, a restart, a full inbox) reaches the current
round, and what the paper's gossip assumption means: every message a correct
validator holds eventually reaches every correct validator.  Relaying what
others sent matters too: a restarted validator that did not see again the
prevotes that justified a lock could never accept the locked value's
re-proposal (Algorithm 1, lines 28-33).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from consensus.messages import Proposal, Vote
from node.p2p.wire import Status, WireMessage

# Votes of the current height kept: enough for dozens of rounds of a 16-validator set.
MAX_VOTES = 1024
# Proposals kept: the latest few; a locked value comes back with its re-proposal.
MAX_PROPOSALS = 4


class Broadcaster(Protocol):
    """What re-gossip needs from the peer network."""

    def broadcast(self, message: WireMessage) -> int: ...


class ConsensusGossip:
    def __init__(self, network: Broadcaster, interval_s: float, height: int,
                 earliest: Callable[[], int] = lambda: 1) -> None:
        """``height`` is the height being decided at start; ``earliest`` the lowest height whose block
        this node keeps, which its status tells the peers."""
        self._network = network
        self._earliest = earliest
        self._interval_s = interval_s
        self._height = height
        self._votes: dict[tuple[object, ...], Proposal | Vote] = {}
        self._proposals: dict[tuple[object, ...], Proposal | Vote] = {}
        self._task: asyncio.Task[None] | None = None

    def keep(self, message: Proposal | Vote) -> None:
        """Keep a verified message for re-sending if it is for the height being decided."""
        if message.height != self._height:
            return
        if isinstance(message, Proposal):
            _keep_first(self._proposals, (message.round, message.proposer), message, MAX_PROPOSALS)
        else:
            _keep_first(self._votes, (message.type, message.round, message.validator), message, MAX_VOTES)

    def send(self, message: Proposal | Vote) -> None:
        """Broadcast a message this validator signed, and keep it for re-sending."""
        self.keep(message)
        self._network.broadcast(message)

    def new_height(self, height: int) -> None:
        """A height was decided: what was kept for it is worthless now; tell the peers."""
        self._height = height
        self._votes.clear()
        self._proposals.clear()
        self._network.broadcast(Status(height - 1, self._earliest()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="regossip")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            messages: list[Proposal | Vote] = [*self._proposals.values(), *self._votes.values()]
            for message in messages:
                self._network.broadcast(message)
            self._network.broadcast(Status(self._height - 1, self._earliest()))


def _keep_first(store: dict[tuple[object, ...], Proposal | Vote], key: tuple[object, ...],
                message: Proposal | Vote, bound: int) -> None:
    """The first message seen per sender and slot stays: an equivocator's second one is not ours to spread."""
    if key in store:
        return
    store[key] = message
    while len(store) > bound:
        store.pop(next(iter(store)))
