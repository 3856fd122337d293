"""The message log of one height, tallied by voting power.

Algorithm 1 is written as "upon 2f+1 ⟨PREVOTE, h, r, id(v)⟩ ..."; this log
answers those questions in constant time by keeping running power sums per
(round, type, value id).

An equivocating validator's conflicting messages are all counted, each towards
its own value, as the paper counts every message received: otherwise a
validator that saw a Byzantine vote for w first could never count that
validator's vote for v, and might never see the quorum that decided v.  A
sender still counts once towards "any value" (the paper's ``∗``) and towards
the round-skip rule.  Conflicting contents per sender and slot are capped, so
a Byzantine validator cannot grow the log without bound.

The log trusts its caller: messages are verified before they are added.
"""

from __future__ import annotations

from consensus.messages import MessageType, Proposal, Vote
from consensus.validators import ValidatorSet

# Distinct contents one sender may have counted in one (round, type) slot.
MAX_CONTENTS_PER_SLOT = 3


def _content_key(message: Proposal | Vote) -> tuple[object, ...]:
    if isinstance(message, Proposal):
        return (message.value_id, message.valid_round)
    return (message.value_id,)


class _Tally:
    """Votes of one type in one round."""

    __slots__ = ("first", "by_value", "power_by_value", "power", "contents")

    def __init__(self) -> None:
        self.first: dict[bytes, Vote] = {}  # each validator's first vote: counted once for ∗
        self.by_value: dict[bytes | None, dict[bytes, Vote]] = {}
        self.power_by_value: dict[bytes | None, int] = {}
        self.power = 0
        self.contents: dict[bytes, int] = {}


class HeightLog:
    """Proposals and votes received for one height, across all its rounds."""

    __slots__ = ("height", "_validators", "_proposals", "_tallies", "_round_power", "_round_senders",
                 "_sender_rounds")

    def __init__(self, height: int, validators: ValidatorSet) -> None:
        self.height = height
        self._validators = validators
        # Per round, proposals by content in arrival order; the first is the one
        # the proposal rules (lines 22-33) act on.
        self._proposals: dict[int, dict[tuple[object, ...], Proposal]] = {}
        self._tallies: dict[tuple[int, int], _Tally] = {}
        # For the round-skip rule (lines 55-56): who sent anything in a round.
        self._round_power: dict[int, int] = {}
        self._round_senders: dict[int, set[bytes]] = {}
        self._sender_rounds: dict[bytes, set[int]] = {}

    def rounds(self) -> list[int]:
        return sorted(self._round_senders)

    def has(self, message: Proposal | Vote) -> bool:
        """A message with the same sender, slot and content is already logged."""
        if isinstance(message, Proposal):
            return _content_key(message) in self._proposals.get(message.round, {})
        tally = self._tallies.get((message.round, int(message.type)))
        return tally is not None and message.validator in tally.by_value.get(message.value_id, {})

    def first(self, message: Proposal | Vote) -> Proposal | Vote | None:
        """The sender's first logged message in the same slot, if any."""
        if isinstance(message, Proposal):
            return self.proposal(message.round)
        tally = self._tallies.get((message.round, int(message.type)))
        return None if tally is None else tally.first.get(message.validator)

    def add(self, message: Proposal | Vote) -> bool:
        """Record a verified message not yet logged; False when its slot is full."""
        assert message.height == self.height, "message for another height"
        assert not self.has(message), "message already logged"
        if isinstance(message, Proposal):
            sender = message.proposer
            proposals = self._proposals.setdefault(message.round, {})
            if len(proposals) >= MAX_CONTENTS_PER_SLOT:
                return False
            proposals[_content_key(message)] = message
        else:
            sender = message.validator
            key = (message.round, int(message.type))
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally()
            if tally.contents.get(sender, 0) >= MAX_CONTENTS_PER_SLOT:
                return False
            tally.contents[sender] = tally.contents.get(sender, 0) + 1
            power = self._validators.power_of(sender)
            if sender not in tally.first:
                tally.first[sender] = message
                tally.power += power
            tally.by_value.setdefault(message.value_id, {})[sender] = message
            tally.power_by_value[message.value_id] = tally.power_by_value.get(message.value_id, 0) + power
        senders = self._round_senders.setdefault(message.round, set())
        if sender not in senders:
            senders.add(sender)
            self._round_power[message.round] = (
                self._round_power.get(message.round, 0) + self._validators.power_of(sender)
            )
            self._sender_rounds.setdefault(sender, set()).add(message.round)
        return True

    def proposal(self, round: int) -> Proposal | None:
        """The first proposal logged for ``round``."""
        proposals = self._proposals.get(round)
        return next(iter(proposals.values())) if proposals else None

    def proposals(self, round: int) -> tuple[Proposal, ...]:
        """Every proposal logged for ``round``: more than one only if the proposer equivocated."""
        return tuple(self._proposals.get(round, {}).values())

    def power_for(self, round: int, kind: MessageType, value_id: bytes | None) -> int:
        """Power of the ``kind`` votes in ``round`` for ``value_id`` (None: nil)."""
        tally = self._tallies.get((round, int(kind)))
        return 0 if tally is None else tally.power_by_value.get(value_id, 0)

    def power_any(self, round: int, kind: MessageType) -> int:
        """Power of the validators with a ``kind`` vote in ``round``, whatever for (the paper's ``∗``)."""
        tally = self._tallies.get((round, int(kind)))
        return 0 if tally is None else tally.power

    def round_power(self, round: int) -> int:
        """Power of the validators that sent any message in ``round``."""
        return self._round_power.get(round, 0)

    def votes_for(self, round: int, kind: MessageType, value_id: bytes | None) -> tuple[Vote, ...]:
        """The ``kind`` votes of ``round`` for ``value_id``, in canonical validator order."""
        tally = self._tallies.get((round, int(kind)))
        if tally is None:
            return ()
        votes = tally.by_value.get(value_id, {})
        return tuple(votes[v] for v in sorted(votes))

    def rounds_of(self, sender: bytes) -> set[int]:
        """Rounds in which ``sender`` has a message in the log (read-only view)."""
        return self._sender_rounds.get(sender, set())

    def prune_below(self, round: int) -> None:
        """Forget every round before ``round``; the engine bounds its memory this way."""
        for old in [r for r in self._round_senders if r < round]:
            self._proposals.pop(old, None)
            self._tallies.pop((old, int(MessageType.PREVOTE)), None)
            self._tallies.pop((old, int(MessageType.PRECOMMIT)), None)
            self._round_power.pop(old, None)
            for sender in self._round_senders.pop(old):
                rounds = self._sender_rounds[sender]
                rounds.discard(old)
                if not rounds:
                    del self._sender_rounds[sender]
