"""Ed25519 keys and key files.

A key file is JSON holding the 32-byte seed in hex plus the address it belongs
to, so an operator can see whose key it is without loading it.  The file is
created with mode 0600 and never overwritten: losing a validator or issuer key
to an accidental ``keygen`` would be an incident.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from node.core.address import decode_address, encode_address

KEY_FILE_TYPE = "somnode-ed25519-v1"


class KeyFileError(ValueError):
    """The key file is missing, unreadable or malformed."""


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


def write_key_file(path: str | os.PathLike[str], key: KeyPair) -> None:
    """Write ``key`` to a new file readable by its owner only; refuse to overwrite."""
    path = Path(path)
    body = json.dumps(
        {"type": KEY_FILE_TYPE, "address": key.address, "seed": key.seed.hex()}, indent=2
    ) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: str | os.PathLike[str]) -> KeyPair:
    """Load a key file, checking that its seed matches its recorded address."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"key file {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != KEY_FILE_TYPE:
        raise KeyFileError(f"key file {path} is not a somnode key file (type must be {KEY_FILE_TYPE!r})")
    try:
        seed = bytes.fromhex(data["seed"])
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        key = KeyPair.from_seed(seed)
        if decode_address(data["address"]) != key.public_key:
            raise ValueError("the seed does not belong to the recorded address")
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is corrupt: {exc}") from exc
    return key
