"""``somnode bench``: committed TPS and latency of a fresh local network,
next to the machine's Ed25519 verify ceiling measured in the same run.
See node/tools/bench.py for the method."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from node.app.config import ConsensusSection
from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.tools.bench import LANES, BenchError, BenchResult, format_table, run_bench, to_json
from node.tools.plot import write_plot


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure committed TPS and latency of a local network",
        description="Start a local network, submit pre-signed transfers, report TPS, latency and efficiency "
                    "against the verify ceiling measured in the same run; fail if a correctness check fails.",
    )
    parser.add_argument("--validators", type=int, nargs="+", default=[4], metavar="N",
                        help="network sizes to measure, one run each (default 4)")
    parser.add_argument("--txs", type=int, default=20_000, help="transfers per run (default 20000)")
    parser.add_argument("--accounts", type=int, default=200, help="funded sender accounts (default 200)")
    parser.add_argument("--rate", type=float, nargs="+", default=[0.0], metavar="TPS",
                        help="offered load in transfers/s, one run each; 0 = as fast as accepted (default)")
    parser.add_argument("--batch", type=int, default=500, help="transfers per HTTP request (default 500)")
    parser.add_argument("--lanes", type=int, default=LANES,
                        help=f"concurrent submitters per validator, each posting its batches in turn (default {LANES})")
    parser.add_argument("--max-block-txs", type=int, default=ConsensusSection().max_block_txs,
                        help=f"block size limit (default {ConsensusSection().max_block_txs}, the node's own default)")
    parser.add_argument("--mempool-txs", type=int, default=0,
                        help="mempool capacity per validator (default 4 blocks: back-pressure for a steady state)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="keep the networks here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--plot", type=Path, metavar="FILE",
                        help="also draw each run's committed throughput and latency percentiles over time, "
                             "as a self-contained HTML page (FILE ends in .html)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run validators under cProfile, writing DIR/validatorK.prof (slows them down)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lanes < 1:
        raise CliError(f"--lanes must be at least 1, got {args.lanes}")
    if args.plot is not None and args.plot.suffix.lower() not in (".html", ".htm"):
        raise CliError(f"--plot: {args.plot} must end in .html: the plot is an HTML page of SVG charts")
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="somnode-bench-") as scratch:
        base = args.dir or Path(scratch)
        for validators in args.validators:
            for rate in args.rate:
                directory = base / f"net-{validators}v-{int(rate)}tps-{len(results)}"
                if not args.quiet:
                    print(f"run: {validators} validator(s), rate {'max' if not rate else rate}, {args.txs} transfers")
                try:
                    result = run_bench(directory, validators=validators, accounts=args.accounts, txs=args.txs,
                                       rate=rate, batch=args.batch, seed=args.seed, progress=not args.quiet,
                                       max_block_txs=args.max_block_txs, mempool_txs=args.mempool_txs,
                                       profile_dir=args.profile, lanes=args.lanes)
                except BenchError as exc:
                    raise CliError(f"benchmark stopped: {exc}", EXIT_FAILURE) from None
                results.append(result)
                for name, ok in result.checks.items():
                    if not ok:
                        print(f"  CHECK FAILED: {name}")
    print(format_table(results))
    if args.json:
        args.json.write_text(to_json(results))
    if args.plot:
        write_plot(args.plot, results, os.cpu_count())
        print(f"plot: {args.plot}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILURE
