"""``somnode testnet``: a whole local network in one command.

Generates keys, genesis and configs on loopback (the National Bank as issuer,
commercial banks holding som from genesis) unless the directory already holds
a network, in which case that network is restarted with its data.  Every
validator runs as its own process.  Ctrl-C, SIGTERM or SIGHUP to the
supervisor, or SIGINT to its process group, stops them all and exits 0: a
signal only asks the supervisor to stop, so it is never cut short between
starting a validator and recording it, and no validator outlives it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path

from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.tools.network import DEFAULT_BASE_PORT, create_network
from node.tools.testnet import LocalTestnet, TestnetError, lock_directory

DEFAULT_DIR = Path("testnet")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The live line's block rate is measured over about this many seconds.
RATE_WINDOW_S = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "testnet", help="run N local validators on 127.0.0.1 (Ctrl-C stops them)",
        description="Create (or reopen) a local network in DIR and run every validator until Ctrl-C, "
                    "SIGTERM or SIGHUP.",
    )
    parser.add_argument("--validators", type=int, default=4, metavar="N", help="number of validators (default 4)")
    parser.add_argument("--observers", type=int, default=0, metavar="N",
                        help="observer nodes to start beside them (default 0): registered in the genesis, they "
                             "follow the chain and serve the API, and never vote")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                        help=f"network directory (default ./{DEFAULT_DIR}); reused if it holds a network")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="P",
                        help="first port; validator k uses P+2(k-1) for p2p and the next for its API "
                             f"(default {DEFAULT_BASE_PORT})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stop = _stop_on_signals()
    if not (args.dir / "genesis.json").exists():
        create_network(args.dir, validators=args.validators, banks=max(1, args.validators - 1),
                       base_port=args.base_port, observers=args.observers)
        print(f"created a {args.validators}-validator network in {args.dir}"
              + (f" with {args.observers} observers" if args.observers else ""))
        reopened = False
    else:
        reopened = True
    try:
        lock = lock_directory(args.dir)
        net = LocalTestnet(args.dir)
        net.check_not_running()
    except TestnetError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if reopened:
        print(f"reopening the network in {args.dir}")
    with lock:
        try:
            net.start()
            net.wait_ready(timeout_s=60, stop=stop)
            if not stop.is_set():
                _introduce(net, args.dir)
                _monitor(net, stop)
        except TestnetError as exc:
            raise CliError(str(exc), EXIT_FAILURE) from None
        finally:
            print("\nstopping validators...", file=sys.stderr)
            net.stop()
    return EXIT_OK


def _stop_on_signals() -> threading.Event:
    """An event the stop signals set; set explicitly, so a SIGINT that a shell had the supervisor
    ignore (a background job of a script) stops it as well."""
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda _signum, _frame: stop.set())
    return stop


def _introduce(net: LocalTestnet, directory: Path) -> None:
    for i, url in enumerate(net.api_urls):
        print(f"{net.name(i)}  api {url}  log {net.config_files[i].parent / 'node.log'}")
    print(f"explorer    {net.api_urls[0]}/  (every node serves it at its API address)")
    if net.observers:
        print("observers follow the validators and never vote; their APIs serve reads, proofs, events and the "
              "explorer, and forward submitted transactions to the validators")
    print(f"keys (issuer, banks) in {directory / 'keys'}; try: somnode balance --node {net.api_urls[0]} ADDRESS")
    print("Ctrl-C stops every validator")


def _short(name: str) -> str:
    """validator3 -> v3, observer1 -> o1: the live line stays short."""
    return name[0] + name.lstrip("abcdefghijklmnopqrstuvwxyz")


def _monitor(net: LocalTestnet, stop: threading.Event) -> None:
    """One live line: each validator's height, the block rate, and the transactions the ledger
    has committed since the genesis (so a restart does not start the count again)."""
    seen: deque[tuple[float, int]] = deque()
    while not stop.is_set():
        statuses = [net.status(i) for i in range(len(net))]
        answering = [s for s in statuses if s is not None]
        heights = " ".join(f"{_short(net.name(i))}={s['height'] if s else 'down'}" for i, s in enumerate(statuses))
        line = heights
        if answering:
            leader = max(answering, key=lambda s: s["height"])
            now = time.monotonic()
            seen.append((now, leader["height"]))
            while now - seen[0][0] > RATE_WINDOW_S:
                seen.popleft()
            rate = (seen[-1][1] - seen[0][1]) / (seen[-1][0] - seen[0][0]) if len(seen) > 1 else 0.0
            line += f"  {rate:.1f} blocks/s  {leader['committed_txs']:,} txs committed"
        sys.stdout.write(f"\r{line}   ")
        sys.stdout.flush()
        if not any(net.alive(i) for i in range(len(net))):
            raise TestnetError("every validator has exited; see the node.log files")
        stop.wait(1.0)
