"""Requests in flight (blocks, snapshot lists, chunks): each waits for the answer on the link it was sent on.

An answer is accepted only from that link, so a peer cannot answer a request
made to another peer, and a request fails the moment its link closes (or is
superseded) instead of waiting out its timeout.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from consensus.certificate import CommitCertificate
from node.p2p.link import PeerLink
from node.p2p.wire import Response


class PeerError(Exception):
    """A request to a peer failed; the caller may ask another peer or retry."""


class LinkLost(PeerError):
    """There is no link to the peer, or it closed (or was superseded) before the answer came."""


class BadResponse(PeerError):
    """The peer answered outside the protocol."""


class PendingRequests:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: dict[int, tuple[PeerLink, type, asyncio.Future[Response]]] = {}
        self._ids = itertools.count(1)

    def open(self, link: PeerLink, answer: type) -> tuple[int, asyncio.Future[Response]]:
        """A request to ``link``, answered by a message of type ``answer``."""
        if len(self._pending) >= self._limit:
            raise PeerError(f"{self._limit} requests are already in flight")
        request_id = next(self._ids)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (link, answer, future)
        return request_id, future

    def close(self, request_id: int) -> None:
        del self._pending[request_id]

    def resolve(self, link: PeerLink, response: Response) -> bool:
        """Deliver ``response``; False when nobody on ``link`` is waiting for it (late, unsolicited, or
        an answer of another kind)."""
        pending = self._pending.get(response.request_id)
        if pending is None or pending[0] is not link or type(response) is not pending[1] or pending[2].done():
            return False
        pending[2].set_result(response)
        return True

    def fail_link(self, link: PeerLink) -> None:
        for sent_on, _, future in self._pending.values():
            if sent_on is link and not future.done():
                future.set_exception(LinkLost(f"link to {link.peer_key.hex()} closed"))

    def fail_all(self, reason: str) -> None:
        for _, _, future in self._pending.values():
            if not future.done():
                future.set_exception(LinkLost(reason))


def check_heights(
    peer: bytes, from_height: int, to_height: int, blocks: Sequence[tuple[bytes, CommitCertificate]],
) -> None:
    """Refuse an answer whose certificates are not for consecutive heights from ``from_height``."""
    heights = [cert.height for _, cert in blocks]
    expected = range(from_height, to_height + 1)
    if len(heights) > len(expected) or heights != list(expected[: len(heights)]):
        raise BadResponse(f"peer {peer.hex()} answered heights {from_height}..{to_height} with {heights}")
