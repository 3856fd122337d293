"""A validator's keys, as its config places them: in key files, in a PKCS#11 token, or at a remote signer.

One backend holds both of a validator's keys: its key and, during a rotation,
the one it rotates to (two files, two labels in one token, or two keys at
one signer).  Whatever the backend, each key is a ``consensus.crypto.Signer``
with an address, and the node signs proposals, votes and handshakes through
it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consensus.crypto import SigningUnavailable
from node.app.config import Config
from node.core.address import encode_address
from node.core.keys import Key, KeyFileError, read_key_file
from node.signing.pkcs11 import Token, TokenError, TokenKey, TokenSpec, read_pin
from node.signing.remote import RemoteSigner


class KeyringError(Exception):
    """The keys cannot be had as the config says; the message names the field to fix."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """``keys``: the validator's key first, then the one it rotates to.  ``may_block``: a signature can
    wait on a device or the network, so the host makes them off its event loop.  ``start``: begin
    reaching the keys in the background (a remote signer's link), once the node runs."""

    keys: tuple[Key, ...]
    backend: str
    may_block: bool
    start: Callable[[], None]
    close: Callable[[], None]


def _nothing() -> None:
    return None


def open_keyring(config: Config, chain_id: str) -> Keyring:
    """The keys of a validator's config; a remote signer's link is dialled once ``start`` is called."""
    signer = config.signer
    if signer.backend == "file":
        assert config.node.key_file is not None, "the config loader requires it with the file backend"
        paths = [config.node.key_file] + ([] if config.node.next_key_file is None else [config.node.next_key_file])
        try:
            keys = tuple(read_key_file(path) for path in paths)
        except KeyFileError as exc:
            raise KeyringError(str(exc)) from None
        _distinct(keys, "node.next_key_file", "node.key_file")
        return Keyring(keys, "file", False, _nothing, _nothing)
    if signer.backend == "pkcs11":
        assert signer.pkcs11_module and signer.pkcs11_token and signer.pkcs11_key, "checked by the config loader"
        labels = [signer.pkcs11_key] + ([] if signer.pkcs11_next_key is None else [signer.pkcs11_next_key])
        token, token_keys = open_token_keys(signer.pkcs11_module, signer.pkcs11_token, labels,
                                            signer.pkcs11_pin_file, signer.pkcs11_pin_env, "signer.pkcs11")
        _distinct(token_keys, "signer.pkcs11_next_key", "signer.pkcs11_key")
        return Keyring(token_keys, "pkcs11", True, _nothing, token.close)
    assert signer.remote_address and signer.remote_key and signer.remote_link_key_file, "checked by the loader"
    public_keys = [signer.remote_key] + ([] if signer.remote_next_key is None else [signer.remote_next_key])
    if len(set(public_keys)) != len(public_keys):
        raise KeyringError("signer.remote_next_key: it is the same key as signer.remote_key")
    try:
        link_key = read_key_file(signer.remote_link_key_file)
    except KeyFileError as exc:
        raise KeyringError(f"signer.remote_link_key_file: {exc}") from None
    remote = RemoteSigner(signer.remote_address, chain_id, link_key, public_keys, signer.remote_timeout_ms / 1000)
    return Keyring(remote.keys(), "remote", True, remote.start, remote.close)


def open_token_keys(module: Path, token_label: str, labels: list[str], pin_file: Path | None,
                    pin_env: str | None, where: str) -> tuple[Token, tuple[TokenKey, ...]]:
    """A logged-in token and its keys of ``labels``; errors name ``where`` (a config prefix or an option)."""
    try:
        token = Token(TokenSpec(module, token_label, read_pin(pin_file, pin_env, f"{where}_pin")))
    except TokenError as exc:
        raise KeyringError(f"{where}_token: {exc}") from None
    try:
        return token, tuple(TokenKey(token, label) for label in labels)
    except TokenError as exc:
        token.close()
        raise KeyringError(f"{where}_key: {exc}") from None


def _distinct(keys: tuple[Key, ...], later: str, first: str) -> None:
    if len(keys) == 2 and keys[0].public_key == keys[1].public_key:
        raise KeyringError(f"{later}: it holds the same key as {first} ({encode_address(keys[0].public_key)})")


class CountedKey:
    """A key that reports each signature's outcome (``made`` or ``unavailable``), for the node's metrics."""

    def __init__(self, key: Key, outcome: Callable[[str], None]) -> None:
        self._key = key
        self._outcome = outcome
        self.public_key = key.public_key
        self.address = key.address

    def sign(self, message: bytes) -> bytes:
        try:
            signature = self._key.sign(message)
        except SigningUnavailable:
            self._outcome("unavailable")
            raise
        self._outcome("made")
        return signature
