"""Ed25519 keys and key files.

A key file is JSON holding the 32-byte seed plus the address it belongs to, so
an operator can see whose key it is without loading it: in hex for a
validator's file key (read unattended at start), or sealed under a passphrase
for people's keys (node/core/encrypted_keys.py).  The file is created with
mode 0600 and never overwritten: losing a validator or issuer key to an
accidental ``keygen`` would be an incident.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import nacl.exceptions
import nacl.signing

from node.core.address import decode_address, encode_address
from node.core.encrypted_keys import ENCRYPTED_KEY_FILE_TYPE, WrongPassphrase, decrypt_seed, encrypt_seed

KEY_FILE_TYPE = "somnode-ed25519-v1"
KEY_FILE_TYPES = (KEY_FILE_TYPE, ENCRYPTED_KEY_FILE_TYPE)
# Chain ids of practice networks: their last dash-separated word.  Plain key files are expected there.
TEST_CHAIN_WORDS = frozenset({"localnet", "testnet", "devnet"})


class KeyFileError(ValueError):
    """The key file is missing, unreadable or malformed."""


class Key(Protocol):
    """A key that signs, wherever its private half is: a ``KeyPair`` in memory, a key in a PKCS#11
    token, or one at a remote signer (node/signing/).  ``sign`` may raise
    ``consensus.crypto.SigningUnavailable`` when the key is out of reach just now."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def address(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A signing key with its public key; signs raw bytes."""

    signing_key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        return cls(nacl.signing.SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def address(self) -> str:
        return encode_address(self.public_key)

    @property
    def seed(self) -> bytes:
        return bytes(self.signing_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        return self.signing_key.sign(message).signature


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature; never raises."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError,
            ValueError, TypeError):
        return False
    return True


def is_test_chain(chain_id: str) -> bool:
    """Whether ``chain_id`` names a practice network, where plain key files draw no warning."""
    return chain_id.rsplit("-", 1)[-1] in TEST_CHAIN_WORDS


def write_key_file(path: str | os.PathLike[str], key: KeyPair, passphrase: str | None = None, *,
                   kdf_limits: tuple[int, int] | None = None) -> None:
    """Write ``key`` to a new file readable by its owner only; refuse to overwrite.

    With a ``passphrase`` the seed is sealed (node/core/encrypted_keys.py);
    ``kdf_limits`` (opslimit, memlimit) overrides argon2id's cost, for tests.
    """
    if passphrase is None:
        document: dict[str, object] = {"type": KEY_FILE_TYPE, "address": key.address, "seed": key.seed.hex()}
    else:
        limits = {} if kdf_limits is None else {"opslimit": kdf_limits[0], "memlimit": kdf_limits[1]}
        document = encrypt_seed(key.seed, key.address, passphrase, **limits)
    body = json.dumps(document, indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def key_file_type(path: str | os.PathLike[str]) -> str:
    """The ``type`` of a key file (plain or encrypted), checked to be one somnode writes."""
    return str(_read_document(Path(path))["type"])


def key_file_address(path: str | os.PathLike[str]) -> str:
    """The address a key file holds: checked against the seed for a plain file; for an encrypted
    one the recorded address, which the cipher authenticates whenever the key is used."""
    path = Path(path)
    data = _read_document(path)
    if data["type"] != ENCRYPTED_KEY_FILE_TYPE:
        return read_key_file(path).address
    try:
        return encode_address(decode_address(data["address"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is corrupt: {exc}") from exc


def read_key_file(path: str | os.PathLike[str], passphrase: Callable[[], str] | None = None) -> KeyPair:
    """Load a key file, checking that its seed matches its recorded address.

    ``passphrase`` is asked only for an encrypted file; without it such a file is refused.
    """
    path = Path(path)
    data = _read_document(path)
    if data["type"] == ENCRYPTED_KEY_FILE_TYPE and passphrase is None:
        raise KeyFileError(f"key file {path} is encrypted, and no passphrase can be asked for here")
    try:
        if data["type"] == ENCRYPTED_KEY_FILE_TYPE:
            assert passphrase is not None, "refused above without one"
            seed = decrypt_seed(data, passphrase())
        else:
            seed = bytes.fromhex(data["seed"])
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        key = KeyPair.from_seed(seed)
        if decode_address(data["address"]) != key.public_key:
            raise ValueError("the seed does not belong to the recorded address")
    except WrongPassphrase as exc:
        raise KeyFileError(f"key file {path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is corrupt: {exc}") from exc
    return key


def _read_document(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"key file {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") not in KEY_FILE_TYPES:
        raise KeyFileError(f"key file {path} is not a somnode key file (type must be one of "
                           f"{', '.join(map(repr, KEY_FILE_TYPES))})")
    return data
