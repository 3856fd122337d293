"""Benchmark the consensus core alone: N engines, one process, no network.

Every engine signs and verifies with real Ed25519 (PyNaCl).  Messages travel
through an in-memory FIFO, values are empty, and timeouts fire only if the
network goes quiet, so the figures are the cost of consensus itself: how many
heights per second N validators sharing this core can decide, the CPU time a
height costs, and how much of it is signature verification (which the node
batches and caches; everything else is the engine's own overhead).

    .venv/bin/python scripts/bench_consensus.py                 # 4, 16 and 64 validators
    .venv/bin/python scripts/bench_consensus.py --validators 4 16 --heights 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass

from consensus.engine import Engine
from consensus.events import (
    Broadcast,
    Commit,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.messages import Proposal
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair, verify_signature

CHAIN = "som-bench"
DEFAULT_HEIGHTS = {4: 50, 16: 10, 64: 3}


class TimedVerifier:
    """Ed25519 verification with its CPU time and call count recorded."""

    def __init__(self) -> None:
        self.calls = 0
        self.cpu_ns = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        started = time.process_time_ns()
        ok = verify_signature(public_key, message, signature)
        self.cpu_ns += time.process_time_ns() - started
        self.calls += 1
        return ok


@dataclass(frozen=True, slots=True)
class Result:
    validators: int
    heights: int
    heights_per_second: float
    cpu_ms_per_height: float
    engine_cpu_ms_per_height: float  # CPU time outside signature verification
    verify_share: float
    verifications_per_height: float
    messages_per_height: float
    timeouts_fired: int


def run(n: int, heights: int) -> Result:
    keys = [KeyPair.from_seed(i.to_bytes(32, "big")) for i in range(1, n + 1)]
    validators = ValidatorSet([Validator(k.public_key, 1) for k in keys])
    verifier = TimedVerifier()
    engines = [Engine(CHAIN, validators, k, verifier, lambda h, v: True, 1) for k in keys]
    inbox: deque[tuple[int, object]] = deque()
    timers: deque[tuple[int, ScheduleTimeout]] = deque()
    decided = [0] * n
    messages = 0
    timeouts_fired = 0

    def carry_out(i: int, actions: list) -> None:
        nonlocal messages
        for action in actions:
            if isinstance(action, Broadcast):
                m = action.message
                event = ProposalReceived(m) if isinstance(m, Proposal) else VoteReceived(m)
                messages += 1
                for j in range(n):
                    if j != i:
                        inbox.append((j, event))
            elif isinstance(action, RequestValue):
                inbox.append((i, ValueReady(action.height, action.round, b"")))
            elif isinstance(action, ScheduleTimeout):
                timers.append((i, action))
            elif isinstance(action, Commit):
                decided[i] += 1

    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    for i, engine in enumerate(engines):
        carry_out(i, engine.start())
    while min(decided) < heights:
        if inbox:
            i, event = inbox.popleft()
        elif timers:
            i, timer = timers.popleft()
            event = TimeoutFired(timer.step, timer.height, timer.round)
            timeouts_fired += 1
        else:
            raise RuntimeError("the network went quiet with no timeout pending")
        carry_out(i, engines[i].handle(event))
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return Result(
        validators=n,
        heights=heights,
        heights_per_second=heights / wall,
        cpu_ms_per_height=cpu * 1000 / heights,
        engine_cpu_ms_per_height=(cpu - verifier.cpu_ns / 1e9) * 1000 / heights,
        verify_share=verifier.cpu_ns / 1e9 / cpu if cpu else 0.0,
        verifications_per_height=verifier.calls / heights,
        messages_per_height=messages / heights,
        timeouts_fired=timeouts_fired,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--heights", type=int, help="heights per run (default: 50, 10, 3 for 4, 16, 64)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = []
    header = (f"{'validators':>10} {'heights':>7} {'heights/s':>10} {'CPU ms/height':>14} "
              f"{'engine ms/height':>16} {'verify share':>12} {'verifies/height':>15} {'msgs/height':>11}")
    print(header)
    for n in args.validators:
        heights = args.heights or DEFAULT_HEIGHTS.get(n, 5)
        r = run(n, heights)
        results.append(r)
        print(f"{r.validators:>10} {r.heights:>7} {r.heights_per_second:>10.2f} {r.cpu_ms_per_height:>14.1f} "
              f"{r.engine_cpu_ms_per_height:>16.1f} {r.verify_share:>12.1%} {r.verifications_per_height:>15.0f} "
              f"{r.messages_per_height:>11.0f}")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
