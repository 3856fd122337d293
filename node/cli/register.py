"""``somnode register``: a bank puts a customer's wallet in a tier and links it to an account.

The bank signs with its own key and nonce, like a payment (docs/banks.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import EXIT_FAILURE, CliError
from node.cli.passphrase import add_passphrase_option, load_signing_key, warn_if_plain
from node.cli.wallet import DEFAULT_NODE, send
from node.core.address import AddressError, decode_address
from node.core.registration import Registration
from node.core.tiers import MAX_TIER_ID
from node.core.tx import TxDecodeError
from node.tools.client import ApiClientError, NodeClient


def register(subparsers: argparse._SubParsersAction) -> None:
    text = "a bank: register a wallet in a tier, with a linked account for what exceeds its holding limit"
    parser = subparsers.add_parser("register", help=text, description=text)
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL", help=f"node API (default {DEFAULT_NODE})")
    parser.add_argument("--key", required=True, type=Path, metavar="FILE",
                        help="the bank's key file; an encrypted one asks for its passphrase")
    add_passphrase_option(parser)
    parser.add_argument("--wallet", required=True, metavar="ADDRESS", help="the customer's som1… address")
    parser.add_argument("--tier", required=True, type=int, metavar="N", help=f"the tier, 0..{MAX_TIER_ID}")
    parser.add_argument("--linked", metavar="ADDRESS",
                        help="the account that takes what would carry the wallet over its holding limit")
    parser.add_argument("--no-wait", action="store_true", help="return once accepted, without waiting for commit")
    parser.set_defaults(handler=_register)


def _address(option: str, text: str) -> bytes:
    try:
        return decode_address(text)
    except AddressError as exc:
        raise CliError(f"{option}: {exc}") from None


def _register(args: argparse.Namespace) -> int:
    key = load_signing_key(args, args.key)
    wallet = _address("--wallet", args.wallet)
    linked = b"" if args.linked is None else _address("--linked", args.linked)
    client = NodeClient(args.node)
    try:
        chain_id = client.status()["chain_id"]
        warn_if_plain(args.key, chain_id)
        nonce = client.account(key.address)["pending_nonce"]
        try:
            srx = Registration(key.public_key, nonce, wallet, args.tier, linked).sign(key, chain_id)
        except TxDecodeError as exc:
            raise CliError(str(exc)) from None
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    return send(client, srx.raw, srx.hash, args.no_wait)
