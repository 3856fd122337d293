"""Command line: run many seeded scenarios and report what the checkers found.

    python -m consensus.sim --validators 7 --byzantine 2 --seeds 200 --crashes --partition --loss 0.1

Exits 0 when every checker held in every scenario, 1 otherwise, printing each
failing seed with the command line that replays it.
"""

from __future__ import annotations

import argparse
import sys
import time

from consensus.sim.crypto import MemoVerifier
from consensus.sim.scenario import STRATEGY_CHOICES, Scenario
from consensus.sim.simulator import run_scenario

# Failing scenarios described in full; the rest are only counted.
MAX_REPORTED_FAILURES = 10


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m consensus.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--validators", type=int, default=4, help="number of validators (equal power)")
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
    parser.add_argument("--no-persist", action="store_true",
                        help="restart without the persisted signing state (shows the equivocation danger)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verifier = MemoVerifier()
    started = time.perf_counter()
    scenarios = commits = messages = events = failures = crashes = catch_ups = 0
    slowest_after_stable_ms = 0
    lowest_height: int | None = None
    for seed in range(args.start_seed, args.start_seed + args.seeds):
        try:
            scenario = Scenario(
                seed=seed, validators=args.validators, byzantine=args.byzantine, strategy=args.strategy,
                crashes=args.crashes, loss=args.loss, partition=args.partition, heights=args.heights,
                persist=not args.no_persist,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result = run_scenario(scenario, verifier)
        scenarios += 1
        commits += len(result.commits)
        messages += result.messages_sent
        events += result.events
        crashes += result.crashes
        catch_ups += result.catch_ups
        reached = result.target_reached_ms
        if reached is not None:
            slowest_after_stable_ms = max(slowest_after_stable_ms, reached - result.stable_ms)
        height = result.min_honest_height
        lowest_height = height if lowest_height is None else min(lowest_height, height)
        if not result.ok:
            failures += 1
            if failures <= MAX_REPORTED_FAILURES:
                print(f"FAIL seed={seed} byzantine={result.byzantine}")
                for violation in result.violations[:5]:
                    print(f"  {violation}")
                print(f"  replay: {scenario.command()}")
    elapsed = time.perf_counter() - started
    if args.byzantine > (args.validators - 1) // 3:
        print(f"note: {args.byzantine} Byzantine of {args.validators} exceeds f={(args.validators - 1) // 3}; "
              "safety is not guaranteed")
    print(
        f"scenarios={scenarios} failed={failures} commits={commits} "
        f"lowest_honest_height={lowest_height} messages={messages} events={events} crashes={crashes} catch_ups={catch_ups} "
        f"slowest_after_stable_ms={slowest_after_stable_ms} "
        f"wall_s={elapsed:.2f} per_scenario_ms={1000 * elapsed / max(scenarios, 1):.1f} "
        f"verify_memo_hits={verifier.hits} verify_memo_misses={verifier.misses}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
