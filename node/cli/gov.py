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
from pathlib import Path

from node.cli import EXIT_FAILURE, EXIT_OK, CliError
from node.cli.gov_actions import ACTIONS, build_action
from node.cli.passphrase import add_passphrase_option, warn_if_plain
from node.cli.signing_key import signing_key
from node.cli.token_options import add_token_options, uses_token
from node.cli.wallet import DEFAULT_NODE
from node.core.actions import (
    RotateValidatorKey,
    describe,
)
from node.core.address import encode_address
from node.core.governance import GovernanceTransaction
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
    for name, text, options in ACTIONS:
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
        tx = GovernanceTransaction(sequence, expiry_height, build_action(args, chain_id))
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
    with signing_key(args, args.key, "--key") as key:
        if not uses_token(args):
            warn_if_plain(args.key, pending.chain_id)
        signed = pending.approved(key)
    write_action(args.file, signed, replace=True)
    print(f"{key.address} approved: {describe(pending.tx.action)} ({len(signed.approvals)} approvals)")
    return EXIT_OK


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
