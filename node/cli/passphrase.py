"""Passphrases for encrypted key files, and the warning for plain ones, shared by the verbs that sign.

A passphrase is typed at a prompt that does not echo it, or read from the
first line of ``--passphrase-file FILE`` (for scripts; the file deserves the
same care as the key).  Never from an option's value: that would sit in the
shell history and in ``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from node.cli import CliError
from node.core.encrypted_keys import ENCRYPTED_KEY_FILE_TYPE, check_passphrase
from node.core.keys import KeyPair, is_test_chain, key_file_type, read_key_file


def add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passphrase-file", type=Path, metavar="FILE",
                        help="read the key file's passphrase from the first line of FILE instead of a prompt")


def passphrase_from(args: argparse.Namespace, what: str, confirm: bool = False) -> Callable[[], str]:
    """A function giving the passphrase: the file's first line, or typed at a prompt (twice with ``confirm``)."""

    def ask() -> str:
        path: Path | None = args.passphrase_file
        if path is not None:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"--passphrase-file: cannot read {path}: {exc}") from None
            if not lines or not lines[0]:
                raise CliError(f"--passphrase-file: {path} has no passphrase on its first line")
            return lines[0]
        if not sys.stdin.isatty():
            raise CliError(f"{what} needs a passphrase: give --passphrase-file FILE, or run in a terminal")
        typed = getpass.getpass(f"passphrase for {what}: ")
        if confirm and getpass.getpass("the same passphrase again: ") != typed:
            raise CliError("the two passphrases differ")
        return typed

    return ask


def new_passphrase(args: argparse.Namespace, what: str) -> str:
    passphrase = passphrase_from(args, what, confirm=True)()
    try:
        check_passphrase(passphrase)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return passphrase


def load_signing_key(args: argparse.Namespace, path: Path) -> KeyPair:
    """A person's key from ``path``, asking for its passphrase if it is encrypted."""
    return read_key_file(path, passphrase_from(args, str(path)))


def warn_if_plain(path: Path, chain_id: str) -> None:
    """One line on stderr when a plain key file signs for a chain that is not a practice network."""
    if key_file_type(path) != ENCRYPTED_KEY_FILE_TYPE and not is_test_chain(chain_id):
        print(f"somnode: warning: {path} is a plain key file (its seed is readable by anyone who copies it); "
              f"keep keys of chain {chain_id} encrypted (somnode keygen --encrypt)", file=sys.stderr)
