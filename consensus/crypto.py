"""The signing and verification the engine needs, injected by the host.

The node plugs in its batch verifier (whose cache makes a vote it already
checked free); the simulator plugs in plain Ed25519 or a faster stand-in.
"""

from __future__ import annotations

from typing import Protocol


class SigningUnavailable(Exception):
    """The key could not sign just now (a remote signer or a token is away); the engine
    treats the message as lost, as the protocol tolerates, and carries on."""


class Signer(Protocol):
    """Holds one validator's private key."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message``; raises ``SigningUnavailable`` when the key is out of reach."""
        ...


class Verifier(Protocol):
    """Checks Ed25519 signatures; must never raise on malformed input."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...
