"""What the rest of the node needs from the signature verifier.

Everything that checks signatures takes this Protocol, so the mempool, the
host and the tests can be given the real ``BatchVerifier`` (node/verifier/scheduler.py) or a stand-in, and
the type checker holds both to one contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

Triple = tuple[bytes, bytes, bytes]  # (public key, message, signature)


class SignatureVerifier(Protocol):
    async def verify_batch(self, items: Sequence[Triple], *, urgent: bool = False,
                           keys: Sequence[bytes] | None = None) -> list[bool]:
        """Validity of each triple, in order, computed off the event loop.

        ``urgent`` work (what consensus waits for) goes ahead of queued work.
        ``keys``, when given, are the triples' cache keys: digests that
        determine the whole triple, such as transaction hashes.
        """
        ...

    def verify_many(self, items: Sequence[Triple], keys: Sequence[bytes] | None = None) -> list[bool]:
        """Validity of each triple, blocking the calling thread: never from the event loop's thread."""
        ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """One triple, in the calling thread (see ``verify_many``)."""
        ...
