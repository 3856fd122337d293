"""The validator set: voting power, quorum thresholds and the proposer schedule.

Thresholds are expressed in voting power, not in validator counts, so the
paper's ``2f + 1`` and ``f + 1`` become "strictly more than two thirds" and
"strictly more than one third" of the total power.  With equal powers and
``n = 3f + 1`` validators they are exactly the paper's numbers.

The proposer of (height, round) follows Tendermint's proposer-priority
algorithm (a smooth weighted round-robin): every step each validator's
priority grows by its power, the highest priority proposes and pays back the
total power.  Over any ``total_power`` consecutive steps, starting from all
priorities at zero, each validator proposes exactly ``power`` times.  The
schedule is replayed from that fixed start, so every validator computes the
same proposer for (height, round) without any shared history.

The schedule repeats every ``total_power / gcd(powers)`` steps, so a lookup
replays at most that many steps once, and consecutive lookups one step each.
Powers with a small reduced total (equal powers, or multiples of a common
unit) keep even the first lookup at a large height instant; huge co-prime
powers make it cost a replay of up to a whole period once (docs/performance.md).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Snapshots of the priority vector taken while replaying the schedule; a
# lookup replays forward from the nearest one.  Bounded, like the answers.
_MAX_CHECKPOINTS = 1024
_CHECKPOINT_STRIDE = 256
_MAX_CACHED_PROPOSERS = 4096


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: bytes
    power: int


class ValidatorSet:
    """An immutable, canonically ordered set of validators."""

    __slots__ = (
        "validators", "total_power", "quorum", "f_plus_one",
        "_power", "_index", "_period", "_reduced_powers", "_checkpoints", "_proposers", "_cursor",
    )

    def __init__(self, validators: Sequence[Validator]) -> None:
        if not validators:
            raise ValueError("a validator set needs at least one validator")
        power: dict[bytes, int] = {}
        for validator in validators:
            if not isinstance(validator.public_key, bytes) or len(validator.public_key) != 32:
                raise ValueError(f"validator key must be 32 bytes, got {validator.public_key!r}")
            if type(validator.power) is not int or validator.power < 1:
                raise ValueError(
                    f"validator {validator.public_key.hex()} has power {validator.power!r}; it must be an integer >= 1"
                )
            if validator.public_key in power:
                raise ValueError(f"validator {validator.public_key.hex()} appears twice")
            power[validator.public_key] = validator.power
        self.validators: tuple[Validator, ...] = tuple(sorted(validators, key=lambda v: v.public_key))
        self.total_power: int = sum(power.values())
        # Smallest integer power p with 3p > 2T (the paper's 2f+1) and 3p > T (f+1).
        self.quorum: int = self.total_power * 2 // 3 + 1
        self.f_plus_one: int = self.total_power // 3 + 1
        self._power = power
        self._index = {v.public_key: i for i, v in enumerate(self.validators)}
        # Scaling every power by a common factor leaves the schedule unchanged,
        # so the period of the schedule is the reduced total power.
        divisor = math.gcd(*power.values())
        self._reduced_powers = tuple(v.power // divisor for v in self.validators)
        self._period = self.total_power // divisor
        self._checkpoints: OrderedDict[int, tuple[int, ...]] = OrderedDict(
            {0: (0,) * len(self.validators)}
        )
        self._proposers: OrderedDict[int, bytes] = OrderedDict()
        self._cursor: tuple[int, tuple[int, ...]] = (0, (0,) * len(self.validators))

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self) -> Iterator[Validator]:
        return iter(self.validators)

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._power

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValidatorSet) and self.validators == other.validators

    def __hash__(self) -> int:
        return hash(self.validators)

    def __repr__(self) -> str:
        return f"ValidatorSet(n={len(self.validators)}, total_power={self.total_power})"

    def power_of(self, public_key: bytes) -> int:
        """Voting power of ``public_key``; 0 for anyone outside the set."""
        return self._power.get(public_key, 0)

    def index_of(self, public_key: bytes) -> int:
        """Position in the canonical order; -1 for anyone outside the set."""
        return self._index.get(public_key, -1)

    def proposer(self, height: int, round: int) -> bytes:
        """The paper's ``proposer(h, r)``.

        As in Tendermint the schedule advances one step per height and one per
        round, so a failed round hands the proposal to the next in line.
        """
        if height < 0 or round < 0:
            raise ValueError(f"no proposer for height {height}, round {round}")
        step = (height + round) % self._period
        cached = self._proposers.get(step)
        if cached is not None:
            self._proposers.move_to_end(step)
            return cached
        proposer = self.validators[self._select(step)].public_key
        self._proposers[step] = proposer
        if len(self._proposers) > _MAX_CACHED_PROPOSERS:
            self._proposers.popitem(last=False)
        return proposer

    def _select(self, step: int) -> int:
        """Index of the validator chosen at ``step``, replaying from the nearest
        known state: a checkpoint, or where the previous replay stopped (the
        engine asks for consecutive heights and rounds, so that is usually one step)."""
        start = max(c for c in self._checkpoints if c <= step)
        priorities = list(self._checkpoints[start])
        self._checkpoints.move_to_end(start)
        cursor_step, cursor_priorities = self._cursor
        if start < cursor_step <= step:
            start, priorities = cursor_step, list(cursor_priorities)
        powers = self._reduced_powers
        period = self._period
        indices = range(len(powers))
        chosen = -1
        for current in range(start, step + 1):
            if current % _CHECKPOINT_STRIDE == 0 and current not in self._checkpoints:
                self._remember_checkpoint(current, priorities)
            priorities = [p + w for p, w in zip(priorities, powers)]
            chosen = max(indices, key=priorities.__getitem__)  # the first maximum: ties go to the smaller key
            priorities[chosen] -= period
        self._cursor = (step + 1, tuple(priorities))
        return chosen

    def _remember_checkpoint(self, step: int, priorities: list[int]) -> None:
        self._checkpoints[step] = tuple(priorities)
        if len(self._checkpoints) > _MAX_CHECKPOINTS:
            # Never forget the fixed start: every replay can fall back to it.
            for oldest in self._checkpoints:
                if oldest != 0:
                    del self._checkpoints[oldest]
                    break
