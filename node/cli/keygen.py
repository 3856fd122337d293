"""``somnode keygen``: create one Ed25519 key file.

The file is created with mode 0600 and an existing file is never replaced: a
validator or issuer key overwritten by a mistyped command cannot be recovered.
The address goes to stdout alone, so scripts can capture it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import EXIT_OK, CliError
from node.core.keys import KeyPair, write_key_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="create a new key file and print its address",
        description="Create a new Ed25519 key file (mode 0600) and print its som1... address.",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="the key file to create")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    key = KeyPair.generate()
    try:
        write_key_file(args.out, key)
    except FileExistsError:
        raise CliError(f"{args.out} already exists; refusing to overwrite a key file") from None
    except FileNotFoundError:
        raise CliError(f"cannot create {args.out}: directory {args.out.parent} does not exist") from None
    print(key.address)
    return EXIT_OK
