"""What goes into the engine (events) and what comes out (actions).

The host must carry out actions in the order given.  In particular a
``PersistSigningState`` always precedes the ``Broadcast`` of the message it
covers, and the host must make it durable before sending: that ordering is
what keeps a restarted validator from equivocating.

Timeouts are durations in milliseconds; the host owns the clock and answers a
``ScheduleTimeout`` with a ``TimeoutFired`` once that much time has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from consensus.certificate import CommitCertificate
from consensus.evidence import Evidence
from consensus.messages import Message, Proposal, Vote


class Step(IntEnum):
    """The paper's ``step_p``, ordered as a round progresses."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class SigningState:
    """The last (height, round, step) this validator signed a message for.

    A validator never signs at or below this point again.
    """

    height: int
    round: int
    step: Step

    def allows(self, height: int, round: int, step: Step) -> bool:
        return (height, round, step) > (self.height, self.round, self.step)


# ---- events (host -> engine)

@dataclass(frozen=True, slots=True)
class ProposalReceived:
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class VoteReceived:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValueReady:
    """The application's answer to ``RequestValue``: the paper's ``getValue()``."""

    height: int
    round: int
    value: bytes


Event = ProposalReceived | VoteReceived | TimeoutFired | ValueReady


# ---- actions (engine -> host)

@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Message


@dataclass(frozen=True, slots=True)
class PersistSigningState:
    state: SigningState


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
