"""``somnode testnet``: a whole local network in one command.

Generates keys, genesis and configs on loopback (the National Bank as issuer,
commercial banks holding som from genesis) unless the directory already holds
a network, in which case that network is restarted with its data.  Every
validator runs as its own process; Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from node.cli import EXIT_OK, CliError
from node.tools.client import ApiClientError
from node.tools.network import DEFAULT_BASE_PORT, create_network
from node.tools.testnet import LocalTestnet, TestnetError

DEFAULT_DIR = Path("testnet")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "testnet", help="run N local validators on 127.0.0.1 (Ctrl-C stops them)",
        description="Create (or reopen) a local network in DIR and run every validator until Ctrl-C.",
    )
    parser.add_argument("--validators", type=int, default=4, metavar="N", help="number of validators (default 4)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                        help=f"network directory (default ./{DEFAULT_DIR}); reused if it holds a network")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="P",
                        help="first port; validator k uses P+2(k-1) for p2p and the next for its API "
                             f"(default {DEFAULT_BASE_PORT})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not (args.dir / "genesis.json").exists():
        create_network(args.dir, validators=args.validators, banks=max(1, args.validators - 1),
                       base_port=args.base_port)
        print(f"created a {args.validators}-validator network in {args.dir}")
    else:
        print(f"reopening the network in {args.dir}")
    net = LocalTestnet(args.dir)
    try:
        net.start()
        net.wait_ready(timeout_s=60)
        for i, url in enumerate(net.api_urls):
            print(f"validator{i + 1}  api {url}  log {net.config_files[i].parent / 'node.log'}")
        print(f"keys (issuer, banks) in {args.dir / 'keys'}; try: somnode balance --node {net.api_urls[0]} ADDRESS")
        _monitor(net)
    except TestnetError as exc:
        raise CliError(str(exc), 1) from None
    except KeyboardInterrupt:
        print("\nstopping validators...", file=sys.stderr)
    finally:
        net.stop()
    return EXIT_OK


def _monitor(net: LocalTestnet) -> None:
    """One live line: each validator's height and the transactions committed since start."""
    committed = 0
    seen = None
    while True:
        statuses = [net.status(i) for i in range(len(net))]
        first = statuses[0]
        if first is not None:
            height = first["height"]
            if seen is None:
                seen = height
            while seen < height:
                seen += 1
                try:
                    committed += net.client(0).block(seen)["tx_count"]
                except (ApiClientError, KeyError):
                    break
        heights = " ".join(f"v{i + 1}={s['height'] if s else 'down'}" for i, s in enumerate(statuses))
        sys.stdout.write(f"\r{heights}  committed_txs={committed}   ")
        sys.stdout.flush()
        if not any(net.alive(i) for i in range(len(net))):
            raise TestnetError("every validator has exited; see the node.log files")
        time.sleep(1.0)
