"""The board's actions as ``somnode gov build`` verbs: their options, and the action they make."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from node.cli import CliError
from node.cli.passphrase import add_passphrase_option
from node.cli.signing_key import signing_key
from node.cli.token_options import add_token_options
from node.core.actions import (
    Action,
    AddBank,
    AddObserver,
    DefineTier,
    Freeze,
    OrderReference,
    RemoveBank,
    RemoveObserver,
    ReplaceIssuer,
    RotateValidatorKey,
    Scope,
    Seize,
    SetBoard,
    SetValidator,
    SetWallet,
    Unfreeze,
    proof_bytes,
)
from node.core.address import AddressError, decode_address
from node.core.amount import AmountError, parse_som
from node.core.tiers import INSTITUTIONAL, Tier


def _add_bank_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="the bank's name")
    parser.add_argument("--bank", required=True, metavar="ADDRESS", help="the bank's som1… address")


def _remove_bank_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bank", required=True, metavar="ADDRESS", help="the bank's som1… address")


def _set_validator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validator", required=True, metavar="ADDRESS", help="the validator's som1… address")
    parser.add_argument("--power", required=True, type=int, metavar="N", help="voting power; 0 removes it")


def _rotate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--old", required=True, metavar="ADDRESS", help="the validator's current som1… address")
    parser.add_argument("--new-key", type=Path, metavar="KEYFILE",
                        help="the new key's file: it signs the proof that its holder asks for the rotation")
    add_passphrase_option(parser)
    add_token_options(parser, "the new key")
    parser.add_argument("--by", choices=("validator", "board"), default="validator",
                        help="who approves it: the validator with its old key alone (default; it carries "
                             "sequence 0 and leaves the board's sequence alone), or the board")


def _issuer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--issuer", required=True, metavar="ADDRESS", help="the new issuer's som1… address")


def _board_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", required=True, type=int, metavar="M", help="approvals an action needs")
    parser.add_argument("--member", required=True, action="append", metavar="ADDRESS",
                        help="a member's som1… address; repeat for each member")


def _tier_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", required=True, type=int, metavar="N", help="the tier's number, 0..254")
    parser.add_argument("--name", required=True, help='its name, e.g. "basic KYC"')
    parser.add_argument("--max-balance", required=True, metavar="SOM", help="most a wallet of the tier may hold")
    parser.add_argument("--max-payment", required=True, metavar="SOM", help="largest single payment it may send")
    parser.add_argument("--max-daily-out", required=True, metavar="SOM",
                        help="most it may send in a Bishkek calendar day")


def _wallet_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wallet", required=True, metavar="ADDRESS", help="the wallet's som1… address")
    parser.add_argument("--tier", required=True, metavar="N|institutional",
                        help="a tier number, or 'institutional' (no limits)")
    parser.add_argument("--linked", metavar="ADDRESS", help="the account that takes what exceeds its holding limit")


def _reference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--authority", required=True, help="the authority that issued the order, e.g. a court")
    parser.add_argument("--number", required=True, help="the order's number")
    parser.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the order's date")
    parser.add_argument("--document", required=True, type=Path, metavar="FILE",
                        help="the order document; its SHA-256 goes on chain")


def _freeze_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", required=True, metavar="ADDRESS", help="the account's som1… address")
    parser.add_argument("--scope", required=True, choices=("outgoing", "incoming", "both"),
                        help="which payments the order concerns")
    _reference_options(parser)


def _seize_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", required=True, metavar="ADDRESS", help="the account seized from")
    parser.add_argument("--amount", required=True, metavar="SOM", help='the amount, e.g. "1500.00"')
    parser.add_argument("--to", required=True, metavar="ADDRESS", help="the designated account it goes to")
    _reference_options(parser)


def _add_observer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help='who runs it, e.g. "Financial supervision"')
    parser.add_argument("--observer", required=True, metavar="ADDRESS", help="the observer node's som1… address")


def _remove_observer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--observer", required=True, metavar="ADDRESS", help="the observer node's som1… address")


ACTIONS = (
    ("add-bank", "admit a commercial bank", _add_bank_options),
    ("remove-bank", "remove a commercial bank", _remove_bank_options),
    ("set-validator", "add a validator, change its power, or remove it with power 0", _set_validator_options),
    ("rotate-key", "give a validator a new consensus key", _rotate_options),
    ("replace-issuer", "make another key the issuer", _issuer_options),
    ("set-board", "replace the board's members and threshold", _board_options),
    ("define-tier", "define a wallet tier, or change one's limits", _tier_options),
    ("set-wallet", "set a wallet's tier and linked account, institutional included", _wallet_options),
    ("freeze", "legal order: freeze an account's outgoing or incoming payments, or both", _freeze_options),
    ("unfreeze", "legal order: lift a freeze", _freeze_options),
    ("seize", "legal order: seize an amount from an account into a designated account", _seize_options),
    ("add-observer", "register an observer node: validators let it follow the chain; it never votes",
     _add_observer_options),
    ("remove-observer", "remove an observer node: validators close its links", _remove_observer_options),
)


def _address(option: str, text: str) -> bytes:
    try:
        return decode_address(text)
    except AddressError as exc:
        raise CliError(f"{option}: {exc}") from None


def build_action(args: argparse.Namespace, chain_id: str) -> Action:
    match args.action:
        case "add-bank":
            return AddBank(args.name, _address("--bank", args.bank))
        case "remove-bank":
            return RemoveBank(_address("--bank", args.bank))
        case "set-validator":
            return SetValidator(_address("--validator", args.validator), args.power)
        case "rotate-key":
            old_key = _address("--old", args.old)
            with signing_key(args, args.new_key, "--new-key") as new:
                return RotateValidatorKey(old_key, new.public_key,
                                          new.sign(proof_bytes(chain_id, old_key, new.public_key)))
        case "replace-issuer":
            return ReplaceIssuer(_address("--issuer", args.issuer))
        case "set-board":
            members = tuple(sorted({_address("--member", text) for text in args.member}))
            if len(members) != len(args.member):
                raise CliError("--member: a member is named twice")
            return SetBoard(args.threshold, members)
        case "define-tier":
            try:
                return DefineTier(Tier(args.id, args.name, _som("--max-balance", args.max_balance),
                                       _som("--max-payment", args.max_payment),
                                       _som("--max-daily-out", args.max_daily_out)))
            except ValueError as exc:
                raise CliError(f"define-tier: {exc}") from None
        case "set-wallet":
            tier = INSTITUTIONAL if args.tier == "institutional" else _tier_number(args.tier)
            linked = b"" if args.linked is None else _address("--linked", args.linked)
            return SetWallet(_address("--wallet", args.wallet), tier, linked)
        case "freeze" | "unfreeze":
            order = Freeze if args.action == "freeze" else Unfreeze
            return order(_address("--account", args.account), Scope[args.scope.upper()], _reference(args))
        case "seize":
            return Seize(_address("--account", args.account), _som("--amount", args.amount),
                         _address("--to", args.to), _reference(args))
        case "add-observer":
            return AddObserver(args.name, _address("--observer", args.observer))
        case "remove-observer":
            return RemoveObserver(_address("--observer", args.observer))
    raise AssertionError(f"no builder for {args.action}")


def _som(option: str, text: str) -> int:
    try:
        return parse_som(text)
    except AmountError as exc:
        raise CliError(f"{option}: {exc}") from None


def _tier_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise CliError(f"--tier: expected a tier number or 'institutional', got {text!r}")
    return int(text)


def _reference(args: argparse.Namespace) -> OrderReference:
    """The act behind a legal order; the document is hashed here, so only its SHA-256 goes on chain."""
    try:
        document = hashlib.sha256(args.document.read_bytes()).digest()
    except OSError as exc:
        raise CliError(f"--document: cannot read {args.document}: {exc.strerror or exc}") from None
    return OrderReference(args.authority, args.number, args.date, document)
