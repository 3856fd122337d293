"""Byzantine behaviour: what a faulty validator sends instead of what it should.

A Byzantine validator in the simulator runs a real engine (so it knows the
height and round everyone is at and stays a plausible participant) and a
strategy that rewrites each message the engine wants to broadcast.  The
rewritten messages are signed with the validator's own key, exactly as a
compromised bank's server could sign them; nothing here forges another
validator's signature.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import ClassVar

from consensus.crypto import Signer
from consensus.messages import (
    Message,
    MessageType,
    Proposal,
    Vote,
    signing_bytes,
    value_id,
)

# A message and the validator indices it is sent to.
Send = tuple[Message, tuple[int, ...]]

STRATEGIES = ("equivocate", "double-vote", "invalid", "silent", "forged-lock", "future-spam")


def honest_value(height: int, round: int, proposer: int, incarnation: int) -> bytes:
    """The value an honest proposer offers: valid and unique per proposal.

    The incarnation stands for what differs after a restart in a real node
    (mempool contents, timestamp), so a restarted proposer that forgot it had
    already proposed would propose something different.
    """
    return b"valid:%d:%d:%d:%d" % (height, round, proposer, incarnation)


def is_valid_value(height: int, value: bytes) -> bool:
    """The application check the simulated validators run on proposals."""
    return value.startswith(b"valid:")


@dataclass(slots=True)
class ByzantineContext:
    """What a strategy may use: its key, the peers, and its seeded randomness."""

    index: int
    signer: Signer
    chain_id: str
    peers: tuple[int, ...]
    rng: random.Random

    def sign_proposal(self, height: int, round: int, value: bytes, valid_round: int) -> Proposal:
        message = signing_bytes(self.chain_id, MessageType.PROPOSAL, height, round, value_id(value), valid_round)
        return Proposal(height, round, value, valid_round, self.signer.public_key, self.signer.sign(message))

    def sign_vote(self, kind: MessageType, height: int, round: int, vid: bytes | None) -> Vote:
        message = signing_bytes(self.chain_id, kind, height, round, vid)
        return Vote(kind, height, round, vid, self.signer.public_key, self.signer.sign(message))

    def split_peers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Two halves of the peers, drawn afresh so that each conflict lands differently."""
        shuffled = list(self.peers)
        self.rng.shuffle(shuffled)
        half = len(shuffled) // 2
        return tuple(sorted(shuffled[:half])), tuple(sorted(shuffled[half:]))


class Strategy:
    """Rewrites one message the engine wants to broadcast into what is really sent."""

    name: ClassVar[str] = "honest"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        return [(message, ctx.peers)]


class Silent(Strategy):
    """Sends nothing at all: a crashed or withholding validator."""

    name = "silent"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        return []


def _phantom_id(height: int, round: int, index: int) -> bytes:
    """The id of a value nobody has: a vote for it can only stall or confuse."""
    return hashlib.sha256(b"phantom:%d:%d:%d" % (height, round, index)).digest()


class DoubleVote(Strategy):
    """Signs two different votes at every step and shows each to half the peers."""

    name = "double-vote"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        if isinstance(message, Proposal):
            return [(message, ctx.peers)]
        other = self.conflicting_id(ctx, message)
        first, second = ctx.split_peers()
        twin = ctx.sign_vote(message.type, message.height, message.round, other)
        return [(message, first), (twin, second)]

    def conflicting_id(self, ctx: ByzantineContext, vote: Vote) -> bytes | None:
        if vote.value_id is None:
            return _phantom_id(vote.height, vote.round, ctx.index)
        return None


@dataclass(slots=True)
class Equivocate(DoubleVote):
    """As proposer, offers two different valid values to the two halves of the peers.

    Its votes are doubled too, the second one backing its second value when it
    has one for that round.
    """

    name: ClassVar[str] = "equivocate"
    _twins: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        if isinstance(message, Vote):
            return DoubleVote.outgoing(self, ctx, message)
        twin_value = message.value + b":fork"
        self._remember(message.height, message.round, value_id(twin_value))
        twin = ctx.sign_proposal(message.height, message.round, twin_value, message.valid_round)
        first, second = ctx.split_peers()
        return [(message, first), (twin, second)]

    def conflicting_id(self, ctx: ByzantineContext, vote: Vote) -> bytes | None:
        twin = self._twins.get((vote.height, vote.round))
        if twin is not None and twin != vote.value_id:
            return twin
        return DoubleVote.conflicting_id(self, ctx, vote)

    def _remember(self, height: int, round: int, vid: bytes) -> None:
        if len(self._twins) >= 64:
            del self._twins[next(iter(self._twins))]
        self._twins[(height, round)] = vid


class Invalid(Strategy):
    """Proposes values the application rejects and votes only for such values."""

    name = "invalid"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        bad_value = b"invalid:%d:%d:%d" % (message.height, message.round, ctx.index)
        if isinstance(message, Proposal):
            bad = ctx.sign_proposal(message.height, message.round, bad_value, message.valid_round)
            return [(bad, ctx.peers)]
        bad_vote = ctx.sign_vote(message.type, message.height, message.round, value_id(bad_value))
        return [(bad_vote, ctx.peers)]


class ForgedLock(Strategy):
    """As proposer, claims a valid round it has no prevote quorum for.

    A fresh value presented as already backed by 2f+1 prevotes in the previous
    round would, if believed, pull locked honest validators off their lock
    (Algorithm 1, lines 28-33 demand the quorum before they may prevote it).
    """

    name = "forged-lock"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        if isinstance(message, Vote) or message.round == 0:
            return [(message, ctx.peers)]
        value = b"valid:%d:%d:%d:forged" % (message.height, message.round, ctx.index)
        forged = ctx.sign_proposal(message.height, message.round, value, message.round - 1)
        return [(forged, ctx.peers)]


# How far ahead a spamming validator signs votes.
SPAM_ROUNDS = 6


class FutureSpam(Strategy):
    """Votes honestly, and also signs nil votes for many future rounds and the next height.

    Fewer than f+1 validators must never be able to drag the others into a
    later round (lines 55-56), and the engine's bounded buffers must absorb
    the flood.
    """

    name = "future-spam"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        sends: list[Send] = [(message, ctx.peers)]
        if isinstance(message, Vote):
            for ahead in range(1, SPAM_ROUNDS + 1):
                vote = ctx.sign_vote(message.type, message.height, message.round + ahead, None)
                sends.append((vote, ctx.peers))
            sends.append((ctx.sign_vote(message.type, message.height + 1, 0, None), ctx.peers))
        return sends


@dataclass(slots=True)
class CollusionPlan:
    """Shared by colluding validators: which value each honest group is shown.

    ``group_a`` and ``group_b`` split the honest validators.  When a colluder
    proposes, it records its two values here; every colluder then backs value
    A towards group A and value B towards group B at every step of that round.
    """

    group_a: tuple[int, ...]
    group_b: tuple[int, ...]
    colluders: tuple[int, ...]
    values: dict[tuple[int, int], tuple[bytes, bytes]] = field(default_factory=dict)


@dataclass(slots=True)
class Collude(Strategy):
    """More than f validators acting together to split the honest ones.

    Only meaningful beyond the fault threshold: it exists to show that the
    checkers catch a real split.
    """

    plan: CollusionPlan
    name: ClassVar[str] = "collude"

    def outgoing(self, ctx: ByzantineContext, message: Message) -> list[Send]:
        plan = self.plan
        key = (message.height, message.round)
        if isinstance(message, Proposal):
            value_a = message.value
            value_b = message.value + b":fork"
            if len(plan.values) >= 64:
                del plan.values[next(iter(plan.values))]
            plan.values[key] = (value_a, value_b)
            proposal_b = ctx.sign_proposal(message.height, message.round, value_b, message.valid_round)
            allies = tuple(i for i in plan.colluders if i != ctx.index)
            return [(message, plan.group_a + allies), (proposal_b, plan.group_b)]
        split = plan.values.get(key)
        if split is None:
            return [(message, ctx.peers)]
        vote_a = ctx.sign_vote(message.type, message.height, message.round, value_id(split[0]))
        vote_b = ctx.sign_vote(message.type, message.height, message.round, value_id(split[1]))
        allies = tuple(i for i in plan.colluders if i != ctx.index)
        return [(vote_a, plan.group_a + allies), (vote_b, plan.group_b)]


def make_strategy(name: str) -> Strategy:
    """A fresh strategy instance for one Byzantine validator (no shared state)."""
    if name == "equivocate":
        return Equivocate()
    if name == "double-vote":
        return DoubleVote()
    if name == "invalid":
        return Invalid()
    if name == "silent":
        return Silent()
    if name == "forged-lock":
        return ForgedLock()
    if name == "future-spam":
        return FutureSpam()
    raise ValueError(f"unknown Byzantine strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
