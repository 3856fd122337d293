"""A scenario: the options a run is asked for, and the fault plan its seed draws.

The options (validator count, Byzantine count and strategy, which fault kinds
are on) are what a person or a test chooses; everything else — GST, delays,
the partition, which validators are Byzantine, when who crashes — is drawn from
the seed, so a scenario and its seed together replay a run exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Everything the seed decided: the network, who is Byzantine and how, who crashes when."""

    network: NetworkConfig
    powers: tuple[int, ...]
    byzantine: dict[int, str]
    crashes: tuple[Crash, ...]


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
    return FaultPlan(network, powers, byzantine, tuple(crashes))


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
