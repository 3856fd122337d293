"""``somnode keygen``: create one Ed25519 key, in a key file or inside a PKCS#11 token.

The file is created with mode 0600 and an existing file is never replaced: a
validator or issuer key overwritten by a mistyped command cannot be recovered.
``--encrypt`` seals the seed under a passphrase (people's keys: the issuer,
banks, board members).  ``--pkcs11 MODULE`` makes the key inside a token
instead, not extractable, under a label no other object has; the private key
never exists outside the token.  The address goes to stdout alone, so scripts
can capture it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli import EXIT_OK, CliError
from node.cli.passphrase import add_passphrase_option, new_passphrase
from node.core.address import encode_address
from node.core.keys import KeyPair, write_key_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="create a new key (a file, an encrypted file, or in a PKCS#11 token) and print its address",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="the key file to create")
    parser.add_argument("--encrypt", action="store_true",
                        help="seal the key under a passphrase (asked twice, or --passphrase-file)")
    add_passphrase_option(parser)
    token = parser.add_argument_group("a key inside a PKCS#11 token (instead of --out)")
    token.add_argument("--pkcs11", type=Path, metavar="MODULE", help="the token's PKCS#11 module (a .so file)")
    token.add_argument("--token", metavar="LABEL", help="the token's label")
    token.add_argument("--label", metavar="LABEL", help="the new key's label in the token")
    token.add_argument("--pin-file", type=Path, metavar="FILE", help="the user PIN, on the first line of FILE")
    token.add_argument("--pin-env", metavar="NAME", help="the user PIN, in the environment variable NAME")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.pkcs11 is not None:
        return _in_token(args)
    if args.out is None:
        raise CliError("--out FILE is required (or --pkcs11 MODULE to make the key in a token)")
    stray = [option for option, value in (("--token", args.token), ("--label", args.label),
                                          ("--pin-file", args.pin_file), ("--pin-env", args.pin_env)) if value]
    if stray:
        raise CliError(f"{stray[0]} goes with --pkcs11")
    if args.passphrase_file is not None and not args.encrypt:
        raise CliError("--passphrase-file goes with --encrypt")
    if args.out.exists():
        raise CliError(f"{args.out} already exists; refusing to overwrite a key file")
    passphrase = new_passphrase(args, f"the new key file {args.out}") if args.encrypt else None
    key = KeyPair.generate()
    try:
        write_key_file(args.out, key, passphrase)
    except FileExistsError:
        raise CliError(f"{args.out} already exists; refusing to overwrite a key file") from None
    except FileNotFoundError:
        raise CliError(f"cannot create {args.out}: directory {args.out.parent} does not exist") from None
    print(key.address)
    return EXIT_OK


def _in_token(args: argparse.Namespace) -> int:
    from node.signing.pkcs11 import Token, TokenError, TokenSpec, read_pin

    for option, value in (("--out", args.out), ("--encrypt", args.encrypt),
                          ("--passphrase-file", args.passphrase_file)):
        if value:
            raise CliError(f"{option} is for key files; a key made with --pkcs11 stays in the token")
    if not args.token or not args.label:
        raise CliError("--pkcs11 needs --token LABEL and --label LABEL")
    try:
        token = Token(TokenSpec(args.pkcs11, args.token, read_pin(args.pin_file, args.pin_env, "--pin-file")),
                      writable=True)
        try:
            public_key = token.generate(args.label)
        finally:
            token.close()
    except TokenError as exc:
        raise CliError(str(exc)) from None
    print(encode_address(public_key))
    return EXIT_OK
