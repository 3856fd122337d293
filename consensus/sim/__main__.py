"""Command line: run many seeded scenarios and report what the checkers found.

    python -m consensus.sim --validators 7 --byzantine 2 --seeds 200 --crashes --partition --loss 0.1

Exits 0 when every checker held in every scenario, 1 otherwise, printing each
failing seed with the command line that replays it (2 for bad options).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from consensus.sim.crypto import MemoVerifier
from consensus.sim.scenario import STRATEGY_CHOICES, Scenario
from consensus.sim.simulator import SimResult, run_scenario

# Failing scenarios described in full; the rest are only counted.
MAX_REPORTED_FAILURES = 10


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m consensus.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--validators", type=int, default=4, help="number of validators")
    parser.add_argument("--byzantine", type=int, default=0,
                        help="Byzantine validators; more than (N-1)//3 breaks the safety assumption")
    parser.add_argument("--seeds", type=int, default=100, help="number of scenarios")
    parser.add_argument("--start-seed", type=int, default=0, help="seed of the first scenario")
    parser.add_argument("--strategy", choices=STRATEGY_CHOICES, default="mixed",
                        help="Byzantine behaviour; mixed draws one per validator from the seed")
    parser.add_argument("--crashes", action="store_true", help="crash and restart honest validators")
    parser.add_argument("--loss", type=float, default=0.0, help="message loss probability before GST")
    parser.add_argument("--partition", action="store_true", help="partition the network until GST")
    parser.add_argument("--heights", type=int, default=3, help="height every honest validator must reach")
    parser.add_argument("--weighted", action="store_true",
                        help="unequal voting powers (Byzantine validators still hold under a third)")
    parser.add_argument("--no-persist", action="store_true",
                        help="restart without the write-ahead log, signing state included "
                             "(shows the equivocation danger)")
    parser.add_argument("--no-wal-replay", action="store_true",
                        help="restart with the signing state but replay no messages "
                             "(a validator that forgets its lock)")
    parser.add_argument("--restarts", type=int, default=0, metavar="N",
                        help="crash and restart one honest validator N times, mid-height")
    parser.add_argument("--membership", action="store_true",
                        help="change the validator set mid-run: one joins, one changes power, one rotates its key, "
                             "one leaves (each at H+2 after the height H that commits it)")
    parser.add_argument("--early", type=int, default=-1, metavar="I",
                        help="validator I applies every set change one height early (shows the checkers catch it)")
    return parser


@dataclass(slots=True)
class Summary:
    """Totals over the scenarios run."""

    scenarios: int = 0
    failed: int = 0
    violations: int = 0
    commits: int = 0
    catch_ups: int = 0
    crashes: int = 0
    messages: int = 0
    messages_lost: int = 0
    events: int = 0
    lowest_honest_height: int | None = None
    slowest_after_stable_ms: int = 0

    def add(self, result: SimResult) -> None:
        self.scenarios += 1
        self.failed += not result.ok
        self.violations += len(result.violations)
        self.commits += len(result.commits)
        self.catch_ups += result.catch_ups
        self.crashes += result.crashes
        self.messages += result.messages_sent
        self.messages_lost += result.messages_lost
        self.events += result.events
        height = result.min_honest_height
        if self.lowest_honest_height is None or height < self.lowest_honest_height:
            self.lowest_honest_height = height
        reached = result.target_reached_ms
        if reached is not None:
            self.slowest_after_stable_ms = max(self.slowest_after_stable_ms, reached - result.stable_ms)

    def line(self) -> str:
        return " ".join(f"{name}={getattr(self, name)}" for name in self.__slots__)


def _report_failure(result: SimResult) -> None:
    print(f"FAIL seed={result.scenario.seed} byzantine={result.byzantine}")
    for violation in result.violations[:5]:
        print(f"  {violation}")
    print(f"  replay: {result.scenario.command()}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenarios = [
            Scenario(seed=seed, validators=args.validators, byzantine=args.byzantine, strategy=args.strategy,
                     crashes=args.crashes, loss=args.loss, partition=args.partition, heights=args.heights,
                     persist=not args.no_persist, weighted=args.weighted,
                     wal_replay=not args.no_wal_replay, restarts=args.restarts, membership=args.membership,
                     early=args.early)
            for seed in range(args.start_seed, args.start_seed + args.seeds)
        ]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verifier = MemoVerifier()
    summary = Summary()
    started = time.perf_counter()
    for scenario in scenarios:
        result = run_scenario(scenario, verifier)
        summary.add(result)
        if not result.ok and summary.failed <= MAX_REPORTED_FAILURES:
            _report_failure(result)
    elapsed = time.perf_counter() - started
    f = scenarios[0].max_faulty if scenarios else 0
    if args.byzantine > f:
        print(f"note: {args.byzantine} Byzantine of {args.validators} exceeds f={f}; safety is not guaranteed")
    print(f"{summary.line()} wall_s={elapsed:.2f} per_scenario_ms={1000 * elapsed / max(summary.scenarios, 1):.1f} "
          f"verify_memo_hits={verifier.hits} verify_memo_misses={verifier.misses}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
