"""A scenario: the options a run is asked for, and the fault plan its seed draws.

The options (validator count, Byzantine count and strategy, which fault kinds
are on) are what a person or a test chooses; everything else — GST, delays,
the partition, which validators are Byzantine, when who crashes — is drawn from
the seed, so a scenario and its seed together replay a run exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from consensus.sim.byzantine import STRATEGIES
from consensus.sim.network import NetworkConfig, Partition

STRATEGY_CHOICES = (*STRATEGIES, "mixed", "collude")


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int
    validators: int = 4
    byzantine: int = 0
    strategy: str = "mixed"
    crashes: bool = False
    loss: float = 0.0
    partition: bool = False
    heights: int = 3
    persist: bool = True  # False: a restarted validator has lost its whole write-ahead log
    weighted: bool = False  # unequal voting powers drawn from the seed
    wal_replay: bool = True  # False: a restart keeps the signing state but replays no messages
    restarts: int = 0  # crash-restarts of one honest validator, mid-height, on top of ``crashes``
    membership: bool = False  # the validator set changes mid-run: a validator joins, one leaves, ...
    early: int = -1  # a validator that applies every set change one height early (a broken host)

    def __post_init__(self) -> None:
        if self.validators < 1:
            raise ValueError("a scenario needs at least one validator")
        if not 0 <= self.byzantine < self.validators:
            raise ValueError("at least one validator must be honest")
        if self.strategy not in STRATEGY_CHOICES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGY_CHOICES)}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss is a probability below 1")
        if self.heights < 1:
            raise ValueError("the target height must be at least 1")
        if self.restarts < 0:
            raise ValueError("restarts cannot be negative")
        if self.membership and self.heights < 4:
            raise ValueError("set changes need a target height of at least 4 (--heights 4)")

    @property
    def max_faulty(self) -> int:
        """The paper's f: the most Byzantine validators tolerated.

        With unequal powers the plan picks Byzantine validators holding less
        than a third of the power, which up to this count is always possible.
        """
        return (self.validators - 1) // 3

    def command(self) -> str:
        """The command line that replays exactly this run."""
        parts = [
            "python -m consensus.sim",
            f"--validators {self.validators}",
            f"--byzantine {self.byzantine}",
            f"--strategy {self.strategy}",
            f"--heights {self.heights}",
            f"--loss {self.loss}",
            f"--start-seed {self.seed}",
            "--seeds 1",
        ]
        if self.crashes:
            parts.append("--crashes")
        if self.partition:
            parts.append("--partition")
        if not self.persist:
            parts.append("--no-persist")
        if not self.wal_replay:
            parts.append("--no-wal-replay")
        if self.restarts:
            parts.append(f"--restarts {self.restarts}")
        if self.membership:
            parts.append("--membership")
        if self.early >= 0:
            parts.append(f"--early {self.early}")
        if self.weighted:
            parts.append("--weighted")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Crash:
    """Validator ``validator`` crashes ``offset_ms`` after it reaches ``at_height``.

    Tying the crash to progress rather than to a clock time makes every crash
    land while there is still consensus work to disturb.  It restarts
    ``down_ms`` later.  With ``after_persist`` the crash waits for the next
    action list holding a ``PersistSigningState`` and strikes right after it,
    before the broadcast it covers: the moment that tests the ordering rule.
    """

    validator: int
    at_height: int
    offset_ms: int
    down_ms: int
    after_persist: bool


class ChangeKind(StrEnum):
    ADD = "add"  # the validator joins with ``power``
    POWER = "power"  # its power becomes ``power``
    ROTATE = "rotate"  # it signs with its second key from then on
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class SetChange:
    """A change of the validator set committed at ``height``: it holds from ``height + 2``."""

    height: int
    kind: ChangeKind
    validator: int
    power: int = 0


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Everything the seed decided: the network, who is Byzantine and how, who crashes when,
    and how the validator set changes (validators past the first ``len(powers)`` join later)."""

    network: NetworkConfig
    powers: tuple[int, ...]
    byzantine: dict[int, str]
    crashes: tuple[Crash, ...]
    changes: tuple[SetChange, ...] = ()
    joiners: int = 0


def draw_plan(scenario: Scenario) -> FaultPlan:
    """The fault plan the scenario's seed determines."""
    rng = random.Random(f"somnode-sim-plan:{scenario.seed}")
    n = scenario.validators
    gst_ms = rng.randint(0, 1500)
    if scenario.partition or scenario.loss:
        gst_ms = max(gst_ms, rng.randint(300, 2500))
    max_delay_ms = rng.randint(40, 600)
    delta_ms = rng.randint(5, 30)
    partition = None
    if scenario.partition and n > 1:
        members = list(range(n))
        rng.shuffle(members)
        cut = rng.randint(1, n - 1)
        start = rng.randint(0, gst_ms // 2)
        end = rng.randint(start, gst_ms)
        partition = Partition((frozenset(members[:cut]), frozenset(members[cut:])), start, end)
    network = NetworkConfig(
        gst_ms=gst_ms,
        delta_ms=delta_ms,
        max_delay_ms=max(max_delay_ms, delta_ms),
        loss=scenario.loss,
        duplicate=rng.choice((0.0, 0.02, 0.1)),
        partition=partition,
    )
    powers = tuple(rng.randint(1, 10) for _ in range(n)) if scenario.weighted else (1,) * n
    byzantine_ids = _pick_byzantine(rng, powers, scenario.byzantine, scenario.byzantine <= scenario.max_faulty)
    byzantine = {
        i: rng.choice(STRATEGIES) if scenario.strategy == "mixed" else scenario.strategy
        for i in byzantine_ids
    }
    honest = [i for i in range(n) if i not in byzantine]
    crashes: list[Crash] = []
    if scenario.crashes:
        for _ in range(rng.randint(1, 2)):
            crashes.append(Crash(
                validator=rng.choice(honest),
                at_height=rng.randint(1, scenario.heights),
                offset_ms=rng.randint(0, 300),
                down_ms=rng.randint(20, 1500),
                after_persist=rng.random() < 0.5,
            ))
    if scenario.restarts:
        # One honest validator down again and again, each time inside a height, mostly
        # right after it wrote a signed message: where a lost lock would show.
        restarted = rng.choice(honest)
        for index in range(scenario.restarts):
            crashes.append(Crash(
                validator=restarted,
                at_height=1 + index * scenario.heights // scenario.restarts,
                offset_ms=rng.randint(0, 400),
                down_ms=rng.randint(20, 600),
                after_persist=rng.random() < 0.75,
            ))
    changes, joiners = _draw_changes(rng, scenario, powers, byzantine) if scenario.membership else ((), 0)
    return FaultPlan(network, powers, byzantine, tuple(crashes), changes, joiners)


def _draw_changes(rng: random.Random, scenario: Scenario, powers: tuple[int, ...],
                  byzantine: dict[int, str]) -> tuple[tuple[SetChange, ...], int]:
    """One validator joins, one changes its power, one rotates its key, one leaves, in a seeded order.

    A change that would move a third of the power or more (what the ledger
    refuses), empty the set, or give the Byzantine validators a third of the
    power is left out, so the scenario stays within the protocol's bounds at
    every height.
    """
    n = len(powers)
    joiner = n
    honest = [i for i in range(n) if i not in byzantine]
    wanted = [SetChange(0, ChangeKind.ADD, joiner, rng.randint(1, max(1, min(powers)))),
              SetChange(0, ChangeKind.POWER, rng.choice(honest), rng.randint(1, 2 * max(powers))),
              SetChange(0, ChangeKind.ROTATE, rng.choice(honest)),
              SetChange(0, ChangeKind.REMOVE, rng.choice(honest))]
    rng.shuffle(wanted)
    heights = sorted(rng.sample(range(1, scenario.heights - 1), k=min(len(wanted), scenario.heights - 2)))
    current = dict(enumerate(powers))
    kept: list[SetChange] = []
    for height, change in zip(heights, wanted):
        after = dict(current)
        if change.kind in (ChangeKind.ADD, ChangeKind.POWER):
            after[change.validator] = change.power
        elif change.kind is ChangeKind.REMOVE:
            after.pop(change.validator, None)
        total, before_total = sum(after.values()), sum(current.values())
        added = sum(max(0, p - current.get(v, 0)) for v, p in after.items())
        removed = sum(max(0, p - after.get(v, 0)) for v, p in current.items())
        moved = max(added, removed, current.get(change.validator, 0) if change.kind is ChangeKind.ROTATE else 0)
        faulty = sum(p for v, p in after.items() if v in byzantine)
        if not after or 3 * moved >= before_total or 3 * faulty >= total:
            continue
        kept.append(SetChange(height, change.kind, change.validator, change.power))
        current = after
    return tuple(kept), 1


def _pick_byzantine(rng: random.Random, powers: tuple[int, ...], count: int, within_f: bool) -> list[int]:
    """``count`` validators at random; within f, only sets holding under a third of the power.

    The ``count`` lowest-powered validators always qualify when ``count`` is at
    most (n-1)//3, since they hold at most count/n of the power.
    """
    n = len(powers)
    total = sum(powers)
    for _ in range(32):
        chosen = sorted(rng.sample(range(n), count))
        if not within_f or 3 * sum(powers[i] for i in chosen) < total:
            return chosen
    chosen = sorted(sorted(range(n), key=lambda i: (powers[i], i))[:count])
    assert 3 * sum(powers[i] for i in chosen) < total, "the lowest-powered validators exceed a third"
    return chosen
