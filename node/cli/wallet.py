"""Wallet verbs against any node's API: ``transfer``, ``issue``, ``redeem``,
``balance``, ``tx`` and ``status``; and ``address`` of a key file.

The chain id comes from the node and the nonce from the sender's account
(counting its pending transactions), so a bank's operator needs only a key
file, an address and an amount.  Amounts are given in som ("12.50").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.core.address import decode_address, encode_address
from node.core.amount import format_som, parse_som
from node.core.keys import read_key_file
from node.core.tx import Transaction, TxKind
from node.tools.client import ApiClientError, NodeClient

DEFAULT_NODE = "http://127.0.0.1:26657"


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, kind, text in (
        ("transfer", TxKind.TRANSFER, "send som from your key to an address"),
        ("issue", TxKind.ISSUE, "issuer only: create som into an account"),
        ("redeem", TxKind.REDEEM, "bank only: destroy som you hold"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        _node_option(parser)
        parser.add_argument("--key", required=True, type=Path, metavar="FILE", help="the sender's key file")
        if kind is not TxKind.REDEEM:
            parser.add_argument("--to", required=True, metavar="ADDRESS", help="recipient som1... address")
        parser.add_argument("--amount", required=True, metavar="SOM", help='amount in som, e.g. "12.50"')
        parser.add_argument("--memo", default="", help="free text, at most 256 bytes")
        parser.add_argument("--no-wait", action="store_true", help="return once accepted, without waiting for commit")
        parser.set_defaults(handler=_send, kind=kind)

    balance = subparsers.add_parser("balance", help="show an account's balance and nonce")
    _node_option(balance)
    balance.add_argument("address", metavar="ADDRESS")
    balance.set_defaults(handler=_balance)

    tx = subparsers.add_parser("tx", help="show a transaction's status")
    _node_option(tx)
    tx.add_argument("hash", metavar="HASH", help="transaction hash in hex")
    tx.set_defaults(handler=_tx)

    address = subparsers.add_parser("address", help="print the address of a key file")
    address.add_argument("key", type=Path, metavar="KEYFILE")
    address.set_defaults(handler=_address)

    status = subparsers.add_parser("status", help="show a node's status")
    _node_option(status)
    status.set_defaults(handler=_status)


def _node_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL",
                        help=f"node API address (default {DEFAULT_NODE})")


def _send(args: argparse.Namespace) -> int:
    key = read_key_file(args.key)
    amount = parse_som(args.amount)
    recipient = decode_address(args.to) if args.kind is not TxKind.REDEEM else None
    client = NodeClient(args.node)
    try:
        chain_id = client.status()["chain_id"]
        nonce = client.account(key.address)["pending_nonce"]
        stx = Transaction(args.kind, key.public_key, nonce, amount, recipient, args.memo).sign(key, chain_id)
        result = client.submit([stx.raw])[0]
        if not result["accepted"]:
            print(f"refused: {result['code']}: {result.get('message', '')}")
            return EXIT_FAILURE
        print(f"accepted {stx.hash.hex()}")
        if args.no_wait:
            return EXIT_OK
        status = client.wait_committed(stx.hash.hex())
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(f"committed height={status['height']} index={status['index']} result={status['result']}")
    return EXIT_OK if status["result"] == "ok" else EXIT_FAILURE


def _address(args: argparse.Namespace) -> int:
    print(read_key_file(args.key).address)
    return EXIT_OK


def _balance(args: argparse.Namespace) -> int:
    address = encode_address(decode_address(args.address))
    try:
        account = NodeClient(args.node).account(address)
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(f"{address}  {format_som(account['balance'])} som  nonce={account['nonce']}")
    return EXIT_OK


def _tx(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(NodeClient(args.node).tx(args.hash), indent=2))
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(NodeClient(args.node).status(), indent=2))
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    return EXIT_OK
