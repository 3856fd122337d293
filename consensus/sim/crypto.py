"""Deterministic validator keys and a shared memoising verifier for the simulator.

The simulator signs with real Ed25519 (PyNaCl) so that the engine's signature
checks are exercised, but N simulated validators would otherwise verify every
message N times.  A signature check is a pure function of (key, message,
signature), so one bounded memo shared by all simulated validators (and, across
scenarios, by a whole test run) answers repeats without changing any outcome.
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing

_KEY_DOMAIN = b"somnode-sim-validator-key-v1\x00"


class SimSigner:
    """A simulated validator's Ed25519 key, derived from its index.

    Keys depend only on the index so that the same messages recur across
    scenarios and a shared ``MemoVerifier`` keeps paying off.
    """

    __slots__ = ("_key", "_public_key")

    def __init__(self, index: int) -> None:
        seed = hashlib.sha256(_KEY_DOMAIN + index.to_bytes(4, "big")).digest()
        self._key = nacl.signing.SigningKey(seed)
        self._public_key = bytes(self._key.verify_key)

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


class MemoVerifier:
    """Ed25519 verification with a bounded first-in-first-out memo of answers."""

    __slots__ = ("_capacity", "_memo", "_verify_keys", "hits", "misses")

    def __init__(self, capacity: int = 1 << 16) -> None:
        if capacity <= 0:
            raise ValueError("memo capacity must be positive")
        self._capacity = capacity
        self._memo: dict[tuple[bytes, bytes, bytes], bool] = {}
        self._verify_keys: dict[bytes, nacl.signing.VerifyKey] = {}
        self.hits = 0
        self.misses = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        answer = self._memo.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.misses += 1
        answer = self._check(public_key, message, signature)
        if len(self._memo) >= self._capacity:
            del self._memo[next(iter(self._memo))]
        self._memo[key] = answer
        return answer

    def _check(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            verify_key = self._verify_keys.get(public_key)
            if verify_key is None:
                verify_key = nacl.signing.VerifyKey(public_key)
                if len(self._verify_keys) >= self._capacity:
                    self._verify_keys.clear()
                self._verify_keys[public_key] = verify_key
            verify_key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError, ValueError, TypeError):
            return False
        return True
