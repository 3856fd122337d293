"""The options that name a key inside a PKCS#11 token, for the verbs that sign with one.

A validator whose keys live in a token signs its own key rotation there too
(``gov build rotate-key`` proves the new key, ``gov sign`` approves with the
old one), with the options ``keygen --pkcs11`` takes.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.cli import CliError
from node.core.keys import Key


def add_token_options(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group(f"{what} inside a PKCS#11 token (instead of a key file)")
    group.add_argument("--pkcs11", type=Path, metavar="MODULE", help="the token's PKCS#11 module (a .so file)")
    group.add_argument("--token", metavar="LABEL", help="the token's label")
    group.add_argument("--label", metavar="LABEL", help="the key's label in the token")
    group.add_argument("--pin-file", type=Path, metavar="FILE", help="the user PIN, on the first line of FILE")
    group.add_argument("--pin-env", metavar="NAME", help="the user PIN, in the environment variable NAME")


def uses_token(args: argparse.Namespace) -> bool:
    return args.pkcs11 is not None


@contextmanager
def token_key(args: argparse.Namespace) -> Iterator[Key]:
    """The key the token options name, logged in for the duration of the block."""
    from node.signing.keyring import KeyringError, open_token_keys

    if not args.token or not args.label:
        raise CliError("--pkcs11 needs --token LABEL and --label LABEL")
    try:
        token, keys = open_token_keys(args.pkcs11, args.token, [args.label], args.pin_file, args.pin_env, "--pkcs11")
    except KeyringError as exc:
        raise CliError(str(exc)) from None
    try:
        yield keys[0]
    finally:
        token.close()
