"""Checksummed text addresses for Ed25519 public keys.

An address is ``"som1"`` followed by the lowercase, unpadded RFC 4648 base32
encoding of the 32-byte public key and a 4-byte checksum, the first four bytes
of SHA-256 over ``b"somnode-address-v1" + public_key``.  A single mistyped
character changes the checksum (or breaks the base32), so money is never sent
to a typo.  The format is specified in docs/protocol.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

PREFIX = "som1"
PUBLIC_KEY_SIZE = 32
CHECKSUM_SIZE = 4
_CHECKSUM_DOMAIN = b"somnode-address-v1"
ADDRESS_LENGTH = len(PREFIX) + 58  # 36 bytes -> 58 base32 characters


class AddressError(ValueError):
    """The text is not a valid somnode address."""


def _checksum(public_key: bytes) -> bytes:
    return hashlib.sha256(_CHECKSUM_DOMAIN + public_key).digest()[:CHECKSUM_SIZE]


def encode_address(public_key: bytes) -> str:
    """The text address of a 32-byte Ed25519 public key."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise AddressError("a public key is exactly 32 bytes")
    body = base64.b32encode(public_key + _checksum(public_key)).decode("ascii")
    return PREFIX + body.rstrip("=").lower()


def decode_address(text: str) -> bytes:
    """The public key inside ``text``; raises AddressError naming the mistake.

    Checks run from the most to the least visible mistake, so a capitalised
    address is told it is capitalised, not that it is the wrong length.
    """
    if not isinstance(text, str):
        raise AddressError("an address is text")
    if text != text.lower():
        raise AddressError(f"{text!r}: addresses are written in lowercase{_lowercase_hint(text)}")
    if not text.startswith(PREFIX):
        raise AddressError(f"{text!r} does not start with {PREFIX!r}: it is not a somnode address")
    if len(text) != ADDRESS_LENGTH:
        raise AddressError(
            f"{text!r} is {len(text)} characters long; an address has {ADDRESS_LENGTH} ({PREFIX!r} and "
            f"{ADDRESS_LENGTH - len(PREFIX)} more): check for a missing or extra character"
        )
    body = text[len(PREFIX):]
    try:
        raw = base64.b32decode(body.upper() + "======", casefold=False)
    except (ValueError, binascii.Error) as exc:
        raise AddressError(f"{text!r} contains characters outside the address alphabet") from exc
    public_key, checksum = raw[:PUBLIC_KEY_SIZE], raw[PUBLIC_KEY_SIZE:]
    if len(checksum) != CHECKSUM_SIZE or _checksum(public_key) != checksum:
        raise AddressError(f"{text!r} has a wrong checksum: check it for typos")
    if encode_address(public_key) != text:
        raise AddressError(f"{text!r} is not in canonical form")
    return public_key


def _lowercase_hint(text: str) -> str:
    """The lowercase spelling, when that is a valid address: capitals are the whole mistake."""
    lowered = text.lower()
    try:
        decode_address(lowered)
    except AddressError:
        return ""
    return f" ({lowered})"
