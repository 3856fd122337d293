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
from node.cli.passphrase import add_passphrase_option, load_signing_key, warn_if_plain
from node.core.address import AddressError, decode_address, encode_address
from node.core.amount import AmountError, format_som, parse_som
from node.core.keys import key_file_address
from node.core.tx import MAX_MEMO_BYTES, Transaction, TxKind
from node.tools.client import ApiClientError, NodeClient

DEFAULT_NODE = "http://127.0.0.1:26657"


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, kind, text in (
        ("transfer", TxKind.TRANSFER, "send som from your key to an address"),
        ("issue", TxKind.ISSUE, "issuer only: create som into an account"),
        ("redeem", TxKind.REDEEM, "a bank or the issuer: destroy som you hold"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        _node_option(parser)
        parser.add_argument("--key", required=True, type=Path, metavar="FILE",
                            help="the sender's key file (an encrypted one asks for its passphrase)")
        add_passphrase_option(parser)
        if kind is not TxKind.REDEEM:
            parser.add_argument("--to", required=True, metavar="ADDRESS", help="recipient som1... address")
        parser.add_argument("--amount", required=True, metavar="SOM", help='amount in som, e.g. "12.50"')
        parser.add_argument("--memo", default="", help=f"free text, at most {MAX_MEMO_BYTES} bytes of UTF-8")
        parser.add_argument("--no-wait", action="store_true", help="return once accepted, without waiting for commit")
        parser.set_defaults(handler=_send, kind=kind)

    balance = subparsers.add_parser("balance", help="show an account's balance and nonce")
    _node_option(balance)
    balance.add_argument("address", metavar="ADDRESS")
    balance.set_defaults(handler=_balance)

    tx = subparsers.add_parser("tx", help="show a transaction: status, who paid whom, how much, memo")
    _node_option(tx)
    _json_option(tx)
    tx.add_argument("hash", metavar="HASH", help="transaction hash in hex")
    tx.set_defaults(handler=_tx)

    address = subparsers.add_parser("address", help="print the address of a key file")
    address.add_argument("key", type=Path, metavar="KEYFILE")
    address.set_defaults(handler=_key_address)

    status = subparsers.add_parser("status", help="show a node's status")
    _node_option(status)
    _json_option(status)
    status.set_defaults(handler=_status)


def _node_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL",
                        help=f"node API address (default {DEFAULT_NODE})")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the node's JSON document instead")


def _send(args: argparse.Namespace) -> int:
    # Every option is checked before the node is asked anything, so a typo costs no round trip.
    amount = _amount(args.amount)
    recipient = _address("--to", args.to) if args.kind is not TxKind.REDEEM else None
    _check_memo(args.memo)
    key = load_signing_key(args, args.key)
    client = NodeClient(args.node)
    try:
        chain_id = client.status()["chain_id"]
        warn_if_plain(args.key, chain_id)
        nonce = client.account(key.address)["pending_nonce"]
        stx = Transaction(args.kind, key.public_key, nonce, amount, recipient, args.memo).sign(key, chain_id)
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    return send(client, stx.raw, stx.hash, args.no_wait)


def send(client: NodeClient, raw: bytes, tx_hash: bytes, no_wait: bool) -> int:
    """Submit one signed transaction, say what became of it, and wait for its commit unless told not to."""
    try:
        result = client.submit([raw])[0]
        if not result["accepted"]:
            print(f"refused: {result['code']}: {result.get('message', '')}")
            return EXIT_FAILURE
        print(f"accepted {tx_hash.hex()}")
        if no_wait:
            return EXIT_OK
        status = client.wait_committed(tx_hash.hex())
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(f"committed height={status['height']} index={status['index']} result={status['result']}")
    return EXIT_OK if status["result"] == "ok" else EXIT_FAILURE


def _amount(text: str) -> int:
    try:
        amount = parse_som(text)
    except AmountError as exc:
        raise CliError(f"--amount: {exc}") from None
    if amount == 0:
        raise CliError("--amount: the amount must be more than 0 som (the smallest is 0.01)")
    return amount


def _address(option: str, text: str) -> bytes:
    try:
        return decode_address(text)
    except AddressError as exc:
        raise CliError(f"{option}: {exc}") from None


def _check_memo(memo: str) -> None:
    try:
        size = len(memo.encode("utf-8"))
    except UnicodeEncodeError:
        raise CliError("--memo: the memo holds bytes that are not UTF-8 text") from None
    if size > MAX_MEMO_BYTES:
        raise CliError(f"--memo: the memo is {size} bytes of UTF-8; at most {MAX_MEMO_BYTES} fit in a transaction")


def _key_address(args: argparse.Namespace) -> int:
    print(key_file_address(args.key))
    return EXIT_OK


def _balance(args: argparse.Namespace) -> int:
    address = encode_address(_address("ADDRESS", args.address))
    try:
        account = NodeClient(args.node).account(address)
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(f"{address}  {format_som(account['balance'])} som  nonce={account['nonce']}")
    return EXIT_OK


def _tx(args: argparse.Namespace) -> int:
    try:
        doc = NodeClient(args.node).tx(args.hash)
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_rows(_tx_rows(doc))
    return EXIT_FAILURE if doc["status"] == "unknown" else EXIT_OK


def _tx_rows(doc: dict) -> list[tuple[str, str]]:
    status = {
        "committed": f"committed in block {doc.get('height')} at position {doc.get('index')}: {doc.get('result')}",
        "pending": "pending in the node's mempool",
        "unknown": "unknown: neither pending at this node nor committed",
    }.get(doc["status"], doc["status"])
    rows = [("hash", doc["hash"]), ("status", status)]
    tx = doc.get("tx")
    if tx is not None and tx["kind"] == "governance":
        rows += [("kind", "governance"), ("action", tx["action"]["description"]),
                 ("sequence", str(tx["sequence"])), ("approvals", ", ".join(tx["approvals"]))]
    elif tx is not None and tx["kind"] == "register":
        rows += [("kind", "register"), ("bank", tx["bank"]), ("wallet", tx["wallet"]), ("tier", str(tx["tier"])),
                 ("linked", tx["linked_account"] or "none"), ("nonce", str(tx["nonce"]))]
    elif tx is not None:
        rows += [
            ("kind", tx["kind"]),
            ("from", tx["sender"]),
            ("to", tx["recipient"] or "none (redeemed: the som leave circulation)"),
            ("amount", f"{tx['amount_som']} som"),
            # Quoted and escaped: a memo is anyone's text and must not reach the terminal raw.
            ("memo", json.dumps(tx["memo"]) if tx["memo"] else "none"),
            ("nonce", str(tx["nonce"])),
        ]
    waterfall = doc.get("waterfall")
    if waterfall is not None:
        rows.append(("waterfall", f"{waterfall['credited_som']} som credited, {waterfall['passed_on_som']} som "
                                  f"passed on to the linked account {waterfall['linked_account']}"))
    return rows


def _status(args: argparse.Namespace) -> int:
    try:
        doc = NodeClient(args.node).status()
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    validators = doc["validators"]
    _print_rows([
        ("chain", doc["chain_id"]),
        ("node", doc["node_id"]),
        ("height", f"{doc['height']} (consensus at {doc['consensus_height']}, round {doc['round']})"),
        ("app hash", doc["app_hash"]),
        ("validators", ", ".join(f"{v['name']} (power {v['power']})" for v in validators)),
        ("peers", f"{len(doc['peers'])} of {len(validators) - 1} connected"),
        ("mempool", f"{doc['mempool_size']} transactions pending"),
        ("committed", f"{doc['committed_txs']} transactions"),
        ("supply", f"{doc['supply_som']} som"),
        ("evidence", f"{len(doc['evidence'])} equivocations" if doc["evidence"] else "none"),
    ])
    return EXIT_OK


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
