"""The message log of one height, tallied by voting power.

Algorithm 1 is written as "upon 2f+1 ⟨PREVOTE, h, r, id(v)⟩ ..."; this log
answers those questions in constant time by keeping running power sums per
(round, type, value id).  It stores at most one proposal per round and one vote
per validator per (round, type): a second, different message for the same slot
is equivocation, which the engine turns into evidence instead of counting it.

The log trusts its caller: messages are verified before they are added.
"""

from __future__ import annotations

from consensus.messages import MessageType, Proposal, Vote
from consensus.validators import ValidatorSet


class _Tally:
    """Votes of one type in one round."""

    __slots__ = ("votes", "power_by_value", "power")

    def __init__(self) -> None:
        self.votes: dict[bytes, Vote] = {}
        self.power_by_value: dict[bytes | None, int] = {}
        self.power = 0


class HeightLog:
    """Proposals and votes received for one height, across all its rounds."""

    __slots__ = ("height", "_validators", "_proposals", "_tallies", "_round_power", "_round_senders",
                 "_sender_rounds")

    def __init__(self, height: int, validators: ValidatorSet) -> None:
        self.height = height
        self._validators = validators
        self._proposals: dict[int, Proposal] = {}
        self._tallies: dict[tuple[int, int], _Tally] = {}
        # For the round-skip rule (lines 55-56): who sent anything in a round.
        self._round_power: dict[int, int] = {}
        self._round_senders: dict[int, set[bytes]] = {}
        self._sender_rounds: dict[bytes, set[int]] = {}

    def rounds(self) -> list[int]:
        return sorted(self._round_senders)

    def existing(self, message: Proposal | Vote) -> Proposal | Vote | None:
        """The stored message occupying the same slot, if any."""
        if isinstance(message, Proposal):
            return self._proposals.get(message.round)
        tally = self._tallies.get((message.round, int(message.type)))
        return None if tally is None else tally.votes.get(message.validator)

    def add(self, message: Proposal | Vote) -> None:
        """Record a verified message whose slot is still empty."""
        assert message.height == self.height, "message for another height"
        assert self.existing(message) is None, "slot already taken"
        if isinstance(message, Proposal):
            sender = message.proposer
            self._proposals[message.round] = message
        else:
            sender = message.validator
            key = (message.round, int(message.type))
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally()
            power = self._validators.power_of(sender)
            tally.votes[sender] = message
            tally.power += power
            tally.power_by_value[message.value_id] = tally.power_by_value.get(message.value_id, 0) + power
        senders = self._round_senders.setdefault(message.round, set())
        if sender not in senders:
            senders.add(sender)
            self._round_power[message.round] = (
                self._round_power.get(message.round, 0) + self._validators.power_of(sender)
            )
            self._sender_rounds.setdefault(sender, set()).add(message.round)

    def proposal(self, round: int) -> Proposal | None:
        return self._proposals.get(round)

    def power_for(self, round: int, kind: MessageType, value_id: bytes | None) -> int:
        """Power of the ``kind`` votes in ``round`` for ``value_id`` (None: nil)."""
        tally = self._tallies.get((round, int(kind)))
        return 0 if tally is None else tally.power_by_value.get(value_id, 0)

    def power_any(self, round: int, kind: MessageType) -> int:
        """Power of all ``kind`` votes in ``round``, whatever they are for (the paper's ``∗``)."""
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
        return tuple(
            sorted((v for v in tally.votes.values() if v.value_id == value_id), key=lambda v: v.validator)
        )

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
