"""The bounded cache of signatures this node has already found valid.

A transaction is checked at mempool admission and again when it arrives inside
a proposal, and a vote may be checked on receipt and again inside a commit
certificate.  Remembering valid results makes every check after the first a
dictionary lookup, so each signature costs one Ed25519 verification per node.

Only valid results are ever stored: remembering a failure saves nothing on the
honest path and would let anyone fill the cache with garbage.  Entries are
keyed by a BLAKE2b-256 digest of (public key, signature, message) rather than
the triple itself, so an entry costs the same ~170 bytes whatever the message
size, and a collision (which would make a forged triple look verified) is as
hard as breaking a 256-bit hash.  Callers that already hold such a digest of
the whole triple pass it instead (transactions pass their SHA-256 hash; see
``BatchVerifier.verify_batch``).  Eviction is least-recently-used and bounded
by entry count.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable

DIGEST_SIZE = 32


def signature_digest(public_key: bytes, signed_message: bytes) -> bytes:
    """The cache key of a triple; ``signed_message`` is signature ∥ message as libsodium takes it.

    The public key (32 bytes) and signature (64 bytes) have fixed lengths, so
    the concatenation is unambiguous without length prefixes.
    """
    digest = hashlib.blake2b(public_key, digest_size=DIGEST_SIZE)
    digest.update(signed_message)
    return digest.digest()


class VerifiedSignatureCache:
    """An LRU set of digests of valid triples, shared by the event loop and the worker threads.

    A lock (not the GIL) guards the ordered dict: a lookup moves the entry to
    the recent end and an insert may evict, and those compound steps race
    between threads otherwise.
    """

    __slots__ = ("_capacity", "_entries", "_lock")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._entries)

    def contains(self, digest: bytes) -> bool:
        """True when ``digest`` is cached; a hit makes the entry the most recently used."""
        with self._lock:
            try:
                self._entries.move_to_end(digest)
            except KeyError:
                return False
            return True

    def contains_many(self, digests: Iterable[bytes]) -> list[bool]:
        """``contains`` for a whole batch under one acquisition of the lock."""
        entries = self._entries
        move_to_end = entries.move_to_end
        found: list[bool] = []
        append = found.append
        with self._lock:
            # A membership test first: most lookups on the hot path miss, and a
            # KeyError from move_to_end costs more than the lookup itself.
            for digest in digests:
                if digest in entries:
                    move_to_end(digest)
                    append(True)
                else:
                    append(False)
        return found

    def add_many(self, digests: Iterable[bytes]) -> None:
        """Remember digests of triples that verified, evicting the least recently used beyond capacity."""
        if self._capacity == 0:
            return
        entries = self._entries
        move_to_end = entries.move_to_end
        with self._lock:
            for digest in digests:
                if digest in entries:
                    move_to_end(digest)
                else:
                    entries[digest] = None  # a new key goes in at the recent end
            while len(entries) > self._capacity:
                entries.popitem(last=False)
            assert len(entries) <= self._capacity, "the cache never holds more than its capacity"
