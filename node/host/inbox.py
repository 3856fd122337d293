"""What the host's single writer works through, one item at a time.

Two lanes.  Peer messages arrive at the network's pace and an adversary's:
their lane is bounded and drops what does not fit, which the protocol
tolerates as message loss (re-gossip brings back what matters).  The host's
own items (timeouts, the proposer's go-ahead, blocks fetched by catch-up)
must never be dropped, or a round could wait forever for a timeout; they are
few by construction and go first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.events import TimeoutFired
from consensus.messages import Proposal, Vote
from node.host.validity import Candidate

# The host's own items waiting at once: a handful of timers per round, one go-ahead, one catch-up batch.
MAX_CONTROL_ITEMS = 10_000


@dataclass(frozen=True, slots=True)
class PeerProposal:
    """A proposal whose signature verified, with its value prepared for judging."""

    proposal: Proposal
    candidate: Candidate


@dataclass(frozen=True, slots=True)
class PeerVote:
    """A vote whose signature verified."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class ProposeNow:
    """The proposer's wait for (height, round) is over: build the block now."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class FetchedBlock:
    """A committed block fetched from a peer, its certificate verified, its value prepared."""

    candidate: Candidate
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Blocks for the heights after the tip, in order; ``applied`` learns how many were committed."""

    blocks: tuple[FetchedBlock, ...]
    applied: asyncio.Future[int]


Item = PeerProposal | PeerVote | TimeoutFired | ProposeNow | CaughtUp


class Inbox:
    def __init__(self, max_peer_items: int) -> None:
        if max_peer_items < 1:
            raise ValueError("max_peer_items must be positive")
        self._max_peer = max_peer_items
        self._control: deque[Item] = deque()
        self._peer: deque[Item] = deque()
        self._wake = asyncio.Event()
        self.dropped = 0  # peer messages that found their lane full

    def __len__(self) -> int:
        return len(self._control) + len(self._peer)

    def put_control(self, item: TimeoutFired | ProposeNow | CaughtUp) -> None:
        assert len(self._control) < MAX_CONTROL_ITEMS, "the host's own items are few by construction"
        self._control.append(item)
        self._wake.set()

    def put_peer(self, item: PeerProposal | PeerVote) -> bool:
        """Queue a peer message; False (and counted) when its lane is full."""
        if len(self._peer) >= self._max_peer:
            self.dropped += 1
            return False
        self._peer.append(item)
        self._wake.set()
        return True

    async def get(self) -> Item:
        while not self._control and not self._peer:
            self._wake.clear()
            await self._wake.wait()
        return self._control.popleft() if self._control else self._peer.popleft()
