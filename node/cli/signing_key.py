"""The key a verb signs with: a key file, its passphrase asked if it is encrypted, or a key in a token."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.cli import CliError
from node.cli.passphrase import load_signing_key
from node.cli.token_options import token_key, uses_token
from node.core.keys import Key


@contextmanager
def signing_key(args: argparse.Namespace, path: Path | None, option: str) -> Iterator[Key]:
    """``option`` names the key-file flag in errors; a token key stays open only inside the block."""
    if uses_token(args):
        if path is not None:
            raise CliError(f"{option} or --pkcs11, not both")
        with token_key(args) as key:
            yield key
        return
    if path is None:
        raise CliError(f"{option} KEYFILE is required (or --pkcs11 MODULE --token LABEL --label LABEL)")
    yield load_signing_key(args, path)
