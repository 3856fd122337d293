"""``somnode init``: keys, genesis and configs for a new N-validator network (see node/tools/network.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import EXIT_OK
from node.core.address import encode_address
from node.core.amount import format_som, parse_som
from node.core.genesis import current_genesis_time
from node.tools.network import (
    DEFAULT_BANK_BALANCE,
    DEFAULT_BASE_PORT,
    DEFAULT_BOARD_MEMBERS,
    DEFAULT_BOARD_THRESHOLD,
    DEFAULT_CHAIN_ID,
    LocalNetwork,
    create_network,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create keys, genesis and configs for a new network",
        description="Create the keys, genesis.json and one config.toml per validator for a new network.",
    )
    parser.add_argument("--validators", required=True, type=int, metavar="N", help="number of validators")
    parser.add_argument("--dir", required=True, type=Path, metavar="DIR", help="output directory (empty or absent)")
    parser.add_argument("--chain-id", default=DEFAULT_CHAIN_ID, help=f"chain id (default {DEFAULT_CHAIN_ID})")
    parser.add_argument("--banks", type=int, metavar="M", help="number of commercial banks (default N-1)")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="P",
                        help=f"first port; validator k uses P+2(k-1) and P+2(k-1)+1 (default {DEFAULT_BASE_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="host every validator listens on (default 127.0.0.1)")
    parser.add_argument("--bank-balance", default=DEFAULT_BANK_BALANCE, metavar="SOM",
                        help=f"som each bank holds at genesis (default {DEFAULT_BANK_BALANCE})")
    parser.add_argument("--genesis-time", metavar="TIME", help="YYYY-MM-DDTHH:MM:SSZ (default now)")
    parser.add_argument("--board", type=int, default=DEFAULT_BOARD_MEMBERS, metavar="K",
                        help=f"governance board members (default {DEFAULT_BOARD_MEMBERS})")
    parser.add_argument("--board-threshold", type=int, default=DEFAULT_BOARD_THRESHOLD, metavar="M",
                        help=f"board approvals an action needs (default {DEFAULT_BOARD_THRESHOLD})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    network = create_network(
        args.dir,
        validators=args.validators,
        banks=args.validators - 1 if args.banks is None else args.banks,
        chain_id=args.chain_id,
        base_port=args.base_port,
        host=args.host,
        bank_balance=parse_som(args.bank_balance),
        genesis_time=args.genesis_time or current_genesis_time(),
        board=args.board,
        board_threshold=args.board_threshold,
    )
    _print_summary(network)
    return EXIT_OK


def _print_summary(network: LocalNetwork) -> None:
    genesis = network.genesis
    balances = dict(genesis.balances)
    print(f"chain id      {genesis.chain_id}")
    print(f"genesis hash  {genesis.hash().hex()}")
    print(f"genesis file  {network.genesis_file}")
    print(f"issuer        {encode_address(genesis.issuer)}  key {network.issuer_key_file}")
    for bank, key_file in zip(genesis.banks, network.bank_key_files):
        held = format_som(balances.get(bank.public_key, 0))
        print(f"{bank.name:<13} {encode_address(bank.public_key)}  {held} som  key {key_file}")
    print(f"board         {genesis.board.threshold} of {len(genesis.board.members)} approve an action")
    for member, key_file in zip(genesis.board.members, network.board_key_files):
        print(f"{member.name:<13} {encode_address(member.public_key)}  key {key_file}")
    for validator, config_file in zip(genesis.validators, network.config_files):
        print(
            f"{validator.name:<13} {encode_address(validator.public_key)}  "
            f"p2p {validator.p2p_address}  api {validator.api_address}  config {config_file}"
        )
