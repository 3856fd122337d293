"""``somnode gov``: the board's actions, built, read, signed and combined offline, then submitted.

A board member's key should never sit on a networked machine, so every verb
but ``build`` (which may ask a node for the chain id and next sequence) and
``submit`` works on a file alone (node/tools/gov_file.py):

    somnode gov build set-validator --validator som1… --power 10 --out add.json
    somnode gov show add.json                      # the action in words
    somnode gov sign add.json --key board1.json    # each member, on their own machine
    somnode gov combine add.json copy2.json --out signed.json
    somnode gov submit signed.json                 # waits for the commit
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.cli.passphrase import add_passphrase_option, load_signing_key, warn_if_plain
from node.cli.token_options import add_token_options, token_key, uses_token
from node.cli.wallet import DEFAULT_NODE
from node.core.address import AddressError, decode_address, encode_address
from node.core.governance import (
    Action,
    AddBank,
    GovernanceTransaction,
    RemoveBank,
    ReplaceIssuer,
    RotateValidatorKey,
    SetBoard,
    SetValidator,
    describe,
    proof_bytes,
)
from node.core.keys import Key
from node.core.tx import TxDecodeError
from node.tools.client import ApiClientError, NodeClient
from node.tools.gov_file import GovernanceFileError, PendingAction, read_action, write_action

# Blocks an action stays valid for when --expiry-height is not given: about an hour at a block a second,
# time for a board to sign, short enough that a forgotten file does not stay a live order for long.
DEFAULT_VALIDITY_BLOCKS = 3600
COMMIT_WAIT_S = 60.0


def register(subparsers: argparse._SubParsersAction) -> None:
    gov = subparsers.add_parser("gov", help="governance: build, show, sign, combine and submit board actions",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = gov.add_subparsers(dest="verb", metavar="VERB", required=True)

    build = verbs.add_parser("build", help="write an unsigned action into a new file")
    actions = build.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text, options in _ACTIONS:
        parser = actions.add_parser(name, help=text, description=text)
        options(parser)
        parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="the new action file")
        parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL",
                            help=f"node to ask for the chain id, next sequence and height (default {DEFAULT_NODE})")
        parser.add_argument("--chain-id", help="build offline: the chain id (with --sequence and --expiry-height)")
        parser.add_argument("--sequence", type=int, metavar="N", help="the board's next sequence number")
        parser.add_argument("--expiry-height", type=int, metavar="H",
                            help=f"last height it may commit at (default {DEFAULT_VALIDITY_BLOCKS} blocks ahead)")
        parser.set_defaults(handler=_build)

    show = verbs.add_parser("show", help="print an action file in words, with its approvals")
    show.add_argument("file", type=Path, metavar="FILE")
    show.set_defaults(handler=_show)

    sign = verbs.add_parser("sign", help="add one approval to an action file, in place")
    sign.add_argument("file", type=Path, metavar="FILE")
    sign.add_argument("--key", type=Path, metavar="KEYFILE",
                      help="a board member's key file (or, for a rotation, the validator's old key); an "
                           "encrypted one asks for its passphrase")
    add_passphrase_option(sign)
    add_token_options(sign, "the validator's old key, for its own rotation,")
    sign.set_defaults(handler=_sign)

    combine = verbs.add_parser("combine", help="merge the approvals of copies of one action")
    combine.add_argument("files", nargs="+", type=Path, metavar="FILE")
    combine.add_argument("--out", required=True, type=Path, metavar="FILE", help="the new combined file")
    combine.set_defaults(handler=_combine)

    submit = verbs.add_parser("submit", help="send a signed action to a node and wait for its commit")
    submit.add_argument("file", type=Path, metavar="FILE")
    submit.add_argument("--node", default=DEFAULT_NODE, metavar="URL", help=f"node API (default {DEFAULT_NODE})")
    submit.add_argument("--no-wait", action="store_true", help="return once accepted, without waiting for commit")
    submit.set_defaults(handler=_submit)


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


_ACTIONS = (
    ("add-bank", "admit a commercial bank", _add_bank_options),
    ("remove-bank", "remove a commercial bank", _remove_bank_options),
    ("set-validator", "add a validator, change its power, or remove it with power 0", _set_validator_options),
    ("rotate-key", "give a validator a new consensus key", _rotate_options),
    ("replace-issuer", "make another key the issuer", _issuer_options),
    ("set-board", "replace the board's members and threshold", _board_options),
)


def _address(option: str, text: str) -> bytes:
    try:
        return decode_address(text)
    except AddressError as exc:
        raise CliError(f"{option}: {exc}") from None


def _action(args: argparse.Namespace, chain_id: str) -> Action:
    match args.action:
        case "add-bank":
            return AddBank(args.name, _address("--bank", args.bank))
        case "remove-bank":
            return RemoveBank(_address("--bank", args.bank))
        case "set-validator":
            return SetValidator(_address("--validator", args.validator), args.power)
        case "rotate-key":
            old_key = _address("--old", args.old)
            with _signing_key(args, args.new_key, "--new-key") as new:
                return RotateValidatorKey(old_key, new.public_key,
                                          new.sign(proof_bytes(chain_id, old_key, new.public_key)))
        case "replace-issuer":
            return ReplaceIssuer(_address("--issuer", args.issuer))
        case "set-board":
            members = tuple(sorted({_address("--member", text) for text in args.member}))
            if len(members) != len(args.member):
                raise CliError("--member: a member is named twice")
            return SetBoard(args.threshold, members)
    raise AssertionError(f"no builder for {args.action}")


def _build(args: argparse.Namespace) -> int:
    own_rotation = args.action == "rotate-key" and args.by == "validator"
    sequence = args.sequence
    if own_rotation:
        if sequence not in (None, 0):
            raise CliError("--sequence: a validator's own rotation carries sequence 0 (--by board otherwise)")
        sequence = 0
    if args.chain_id is not None:
        if sequence is None or args.expiry_height is None:
            raise CliError("--chain-id builds offline and needs --sequence and --expiry-height too")
        chain_id, expiry_height = args.chain_id, args.expiry_height
    else:
        client = NodeClient(args.node)
        try:
            status = client.status()
            governance = client.governance()
        except ApiClientError as exc:
            raise CliError(f"{exc} (or build offline with --chain-id, --sequence and --expiry-height)",
                           EXIT_FAILURE) from None
        chain_id = status["chain_id"]
        sequence = governance["pending_sequence"] if sequence is None else sequence
        expiry_height = (status["height"] + DEFAULT_VALIDITY_BLOCKS if args.expiry_height is None
                         else args.expiry_height)
    try:
        tx = GovernanceTransaction(sequence, expiry_height, _action(args, chain_id))
    except TxDecodeError as exc:
        raise CliError(f"{args.action}: {exc}") from None
    pending = PendingAction(chain_id, tx, ())
    try:
        write_action(args.out, pending)
    except FileExistsError:
        raise CliError(f"--out: {args.out} already exists; an action file is never overwritten") from None
    print(f"wrote {args.out}: {describe(tx.action)}")
    signer = "the validator's current key file" if own_rotation else "KEYFILE of a board member"
    print(f"chain {chain_id}, sequence {sequence}, valid until height {expiry_height}; "
          f"next: somnode gov sign {args.out} --key <{signer}>")
    return EXIT_OK


def _load(path: Path) -> PendingAction:
    try:
        return read_action(path)
    except GovernanceFileError as exc:
        raise CliError(str(exc)) from None


def _show(args: argparse.Namespace) -> int:
    pending = _load(args.file)
    tx = pending.tx
    print(f"action        {describe(tx.action)}")
    print(f"chain         {pending.chain_id}")
    print(f"sequence      {tx.sequence}")
    print(f"valid until   height {tx.expiry_height}")
    if isinstance(tx.action, RotateValidatorKey):
        print("proof         the new key signed the rotation (checked)")
    if not pending.approvals:
        print("approvals     none yet")
    for number, (key, _) in enumerate(pending.approvals, 1):
        print(f"approval {number:<4} {encode_address(key)} (signature checked)")
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    pending = _load(args.file)
    with _signing_key(args, args.key, "--key") as key:
        if not uses_token(args):
            warn_if_plain(args.key, pending.chain_id)
        signed = pending.approved(key)
    write_action(args.file, signed, replace=True)
    print(f"{key.address} approved: {describe(pending.tx.action)} ({len(signed.approvals)} approvals)")
    return EXIT_OK


@contextmanager
def _signing_key(args: argparse.Namespace, path: Path | None, option: str) -> Iterator[Key]:
    """The key a verb signs with: a key file (its passphrase asked if encrypted) or a key in a token."""
    if uses_token(args):
        if path is not None:
            raise CliError(f"{option} or --pkcs11, not both")
        with token_key(args) as key:
            yield key
        return
    if path is None:
        raise CliError(f"{option} KEYFILE is required (or --pkcs11 MODULE --token LABEL --label LABEL)")
    yield load_signing_key(args, path)


def _combine(args: argparse.Namespace) -> int:
    combined = _load(args.files[0])
    for path in args.files[1:]:
        try:
            combined = combined.merged(_load(path))
        except GovernanceFileError as exc:
            raise CliError(f"{path}: {exc}") from None
    try:
        write_action(args.out, combined)
    except FileExistsError:
        raise CliError(f"--out: {args.out} already exists; an action file is never overwritten") from None
    print(f"wrote {args.out}: {len(combined.approvals)} approvals of: {describe(combined.tx.action)}")
    return EXIT_OK


def _submit(args: argparse.Namespace) -> int:
    pending = _load(args.file)
    if not pending.approvals:
        raise CliError(f"{args.file} has no approvals yet: sign it first (somnode gov sign)")
    stx = pending.signed()
    client = NodeClient(args.node)
    try:
        chain_id = client.status()["chain_id"]
        if chain_id != pending.chain_id:
            raise CliError(f"the file is for chain {pending.chain_id!r}, the node runs {chain_id!r}")
        result = client.submit([stx.raw])[0]
        if not result["accepted"]:
            print(f"refused: {result['code']}: {result.get('message', '')}")
            return EXIT_FAILURE
        print(f"accepted {stx.hash.hex()}")
        if args.no_wait:
            return EXIT_OK
        status = client.wait_committed(stx.hash.hex(), timeout_s=COMMIT_WAIT_S)
    except ApiClientError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(f"committed height={status['height']} index={status['index']} result={status['result']}")
    return EXIT_OK if status["result"] == "ok" else EXIT_FAILURE
