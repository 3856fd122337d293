"""What goes into the engine (events) and what comes out (actions).

The host must carry out actions in the order given.  In particular a
``PersistSigningState`` always precedes the ``Broadcast`` of the message it
covers, carries that message, and the host must make both durable before
sending (its write-ahead log, ``consensus.wal``): that ordering is what keeps a
restarted validator from equivocating and from forgetting its lock.

Timeouts are durations in milliseconds; the host owns the clock and answers a
``ScheduleTimeout`` with a ``TimeoutFired`` once that much time has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from consensus.certificate import CommitCertificate
from consensus.evidence import Evidence
from consensus.messages import Message, Proposal, Vote

_MAX_ROUND = 2**32 - 1


class Step(IntEnum):
    """The paper's ``step_p``, ordered as a round progresses."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True, order=True)
class SigningState:
    """The last (height, round, step) this validator signed a message for.

    A validator never signs at or below this point again; states compare in
    that order.
    """

    height: int
    round: int
    step: Step

    def allows(self, height: int, round: int, step: Step) -> bool:
        return (height, round, step) > (self.height, self.round, self.step)

    @classmethod
    def barring(cls, height: int) -> SigningState:
        """A state that forbids signing anything at ``height``: every round, every step."""
        return cls(height, _MAX_ROUND, Step.PRECOMMIT)


# ---- events (host -> engine)

@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A proposal from the network, or from the host's write-ahead log after a restart.

    ``verified``: the host has checked the signature against the proposer's
    key (off its event loop), so the engine does not check it again.
    ``valid``: the host's answer to the paper's valid(v) for the proposal's
    value at this height, judged before the proposal was handed over; None
    leaves the engine to ask its own ``is_valid`` function.
    """

    proposal: Proposal
    verified: bool = False
    valid: bool | None = None


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A vote; ``verified`` as for ``ProposalReceived``."""

    vote: Vote
    verified: bool = False


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValueReady:
    """The application's answer to ``RequestValue``: the paper's ``getValue()``.

    ``valid`` as for ``ProposalReceived``: a host that built the value from
    checked transactions says so, and the engine does not ask again.
    """

    height: int
    round: int
    value: bytes
    valid: bool | None = None


Event = ProposalReceived | VoteReceived | TimeoutFired | ValueReady


# ---- actions (engine -> host)

@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Message


@dataclass(frozen=True, slots=True)
class PersistSigningState:
    """Make ``state`` and ``message``, the message it covers, durable before ``message`` is broadcast."""

    state: SigningState
    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    step: Step
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RequestValue:
    """This validator proposes at (height, round): the host builds a value."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class Commit:
    """The height is decided (Algorithm 1, lines 49-54): apply ``value`` and
    store ``certificate`` with it before acting on anything that follows."""

    height: int
    value: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """A validator signed two conflicting messages; reported once per pair."""

    evidence: Evidence


Action = Broadcast | PersistSigningState | ScheduleTimeout | RequestValue | Commit | EvidenceFound
