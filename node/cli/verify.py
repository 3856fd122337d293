"""``somnode verify``: a light client that trusts the genesis file alone (docs/protocol.md §17).

It follows the node's headers from height 1, checking each certificate against
the validator set of its height, then proves the accounts, orders and
transactions asked about against those headers.  One line per fact verified on
stdout; the first failed check ends it with exit code 1 and a line on stderr
naming the check, and a node that cannot be asked (unreachable, an HTTP error,
not JSON) with exit code 3, so a bank's monitoring tells "the node lied" from
"the node is down".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.core.actions import ActionKind, Scope
from node.core.address import AddressError, decode_address, encode_address
from node.core.amount import format_som
from node.core.genesis import load_genesis
from node.ledger.receipts import RECEIPT_CODES
from node.lightclient.client import (
    AccountState,
    LightClient,
    NodeApi,
    NodeUnavailable,
    OrderState,
    SetChange,
    VerificationFailed,
)
from node.lightclient.stateproof import FROZEN_INCOMING, FROZEN_OUTGOING, ProvenOrder
from node.lightclient.txproof import ProvenTx

EXIT_UNAVAILABLE = 3
DEFAULT_NODE = "http://127.0.0.1:26657"


def register(subparsers: argparse._SubParsersAction) -> None:
    text = "light client: follow a node's headers from the genesis and verify accounts, orders and transactions"
    parser = subparsers.add_parser("verify", help=text, description=text)
    parser.add_argument("--genesis", required=True, type=Path, metavar="FILE",
                        help="the chain's genesis.json: the only thing trusted")
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL",
                        help=f"node API address (default {DEFAULT_NODE}); any node, validator or observer")
    parser.add_argument("--account", action="append", default=[], metavar="ADDRESS",
                        help="prove this account's balance, nonce, tier and freezes (repeatable)")
    parser.add_argument("--absent", action="append", default=[], metavar="ADDRESS",
                        help="prove that this address has no account (repeatable)")
    parser.add_argument("--orders", action="append", default=[], metavar="ADDRESS",
                        help="prove this account and each legal order the node lists for it (repeatable)")
    parser.add_argument("--tx", action="append", default=[], metavar="HASH",
                        help="prove this transaction's inclusion and result (repeatable)")
    parser.add_argument("--height", type=int, metavar="H",
                        help="the state height to prove accounts and orders at (default: the node's latest "
                             "committed height minus one, the newest one a header certifies)")
    parser.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    # Every option is checked before the node is asked anything.
    for option, addresses in (("--account", args.account), ("--absent", args.absent), ("--orders", args.orders)):
        for address in addresses:
            try:
                decode_address(address)
            except AddressError as exc:
                raise CliError(f"{option} {address}: {exc}") from None
    tx_hashes = [_tx_hash(text) for text in args.tx]
    if args.height is not None and args.height < 0:
        raise CliError("--height must be 0 or more")
    genesis = load_genesis(args.genesis)
    try:
        api = NodeApi(args.node)
    except ValueError as exc:
        raise CliError(f"--node: {exc}") from None
    with api:
        client = LightClient(api, genesis)
        try:
            return _run(client, args, tx_hashes)
        except VerificationFailed as exc:
            print(f"somnode verify: FAILED: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except NodeUnavailable as exc:
            print(f"somnode verify: error: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE


def _run(client: LightClient, args: argparse.Namespace, tx_hashes: list[bytes]) -> int:
    genesis = client.genesis
    client.check_genesis()
    print(f"genesis   {genesis.chain_id} {client.genesis_hash.hex()}: {len(genesis.validators)} validators, "
          f"power {genesis.total_power}; the node serves this genesis")
    latest = client.latest_height()
    if latest < 1:
        raise VerificationFailed("status: the node has committed no block yet")
    height = latest - 1 if args.height is None else args.height
    if height + 1 > latest:
        raise CliError(f"--height {height}: the node has committed up to {latest}, and the state of a height is "
                       f"certified by the next block")
    client.follow_to(latest)
    print(f"headers   1..{latest}: each header chained to its parent and certified by more than 2/3 of its "
          f"height's validator power")
    for change in client.changes:
        print(_set_change(change))
    accounts: dict[str, AccountState] = {}
    for address in dict.fromkeys([*args.account, *args.orders]):
        accounts[address] = client.prove_account(address, height)
        print(_account_line(accounts[address]))
    for address in args.absent:
        state = client.prove_account(address, height)
        if state.account is not None:
            raise VerificationFailed(f"absent {address}: the state of height {height} proves an account: balance "
                                     f"{format_som(state.account.balance)} som, nonce {state.account.nonce}")
        print(f"absent    {address}: no account at height {height} (proof of absence)")
    for address in args.orders:
        for line in _order_lines(client.prove_orders(address, height, accounts[address].account)):
            print(line)
    for tx_hash in tx_hashes:
        print(_tx_line(client.prove_tx(tx_hash)))
    if client.height > latest:  # a transaction's result needed a later header
        print(f"headers   {latest + 1}..{client.height}: followed for the transaction proofs")
    print(f"verified  everything above against the genesis {client.genesis_hash.hex()[:16]}…")
    return EXIT_OK


def _tx_hash(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CliError(f"--tx {text}: a transaction hash is 64 hex digits")
    return raw


def _set_change(change: SetChange) -> str:
    before, after = dict(change.before), dict(change.after)
    moves = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, 0), after.get(key, 0)
        if old != new:
            moves.append(f"{encode_address(key)} {old}->{new}")
    return (f"set       from height {change.height}: validator set {change.hash.hex()[:16]}… "
            f"({len(after)} validators, power {sum(after.values())}): {', '.join(moves)}")


def _flags(flags: int) -> str:
    frozen = [name for bit, name in ((FROZEN_OUTGOING, "outgoing"), (FROZEN_INCOMING, "incoming")) if flags & bit]
    return "frozen " + " and ".join(frozen) if frozen else "not frozen"


def _account_line(state: AccountState) -> str:
    account = state.account
    if account is None:
        return f"account   {state.address} at height {state.height}: no account (balance 0.00 som)"
    return (f"account   {state.address} at height {state.height}: balance {format_som(account.balance)} som, "
            f"nonce {account.nonce}, tier {account.tier}, {_flags(account.flags)}")


def _order_lines(state: OrderState) -> list[str]:
    lines = [f"order     {state.address} at height {order.height} index {order.index}: {_order(order)} "
             f"(proven at height {state.height})" for order in state.orders]
    lines.extend(f"order     {state.address} at height {at} index {index}: listed, after height {state.height}, "
                 f"not proven" for at, index in state.later)
    lines.append(f"orders    {state.address}: {len(state.orders)} proven, and they account for its freeze flags")
    return lines


def _order(order: ProvenOrder) -> str:
    kind = _name(ActionKind, order.kind)
    detail = (f"{format_som(order.detail)} som to {encode_address(order.destination)}" if order.kind == ActionKind.SEIZE
              else _name(Scope, order.detail))
    return f"{kind} {detail}, {order.authority} no. {order.number} of {order.date}"


def _name(kind: type[ActionKind] | type[Scope], value: int) -> str:
    return kind(value).name.lower() if value in kind._value2member_map_ else f"{kind.__name__} {value}"


def _tx_line(proven: ProvenTx) -> str:
    code = RECEIPT_CODES[proven.code] if proven.code < len(RECEIPT_CODES) else f"code {proven.code}"
    waterfall = "" if proven.waterfall is None else (
        f", {format_som(proven.waterfall[1])} som passed on to {encode_address(proven.waterfall[2])}")
    return (f"tx        {proven.tx_hash.hex()}: in block {proven.height} at index {proven.index}, result {code}"
            f"{waterfall} (headers {proven.height} and {proven.height + 1})")
