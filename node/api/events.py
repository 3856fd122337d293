"""Committed blocks pushed to websocket clients, with bounded memory per client.

``BlockFeed`` is the fan-out the runtime can use to implement
``ApiBackend.subscribe``: each subscriber gets a queue of at most
``queue_size`` blocks.  A subscriber that falls that far behind is cut off
(``SubscriberLagged``) instead of being allowed to grow the node's memory; the
websocket is closed with code 1008 and the client re-syncs with
``GET /v1/blocks/{height}`` before subscribing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import WSCloseCode, web

from node.api.backend import ApiBackend, BlockView
from node.api.codec import block_doc

log = logging.getLogger(__name__)

CLOSE_LAGGED = WSCloseCode.POLICY_VIOLATION
CLOSE_TOO_MANY = WSCloseCode.TRY_AGAIN_LATER
CLOSE_SHUTDOWN = WSCloseCode.GOING_AWAY
CLOSE_INTERNAL = WSCloseCode.INTERNAL_ERROR
# How long a closing handshake may take before the connection is dropped outright.
_CLOSE_TIMEOUT = 5.0


class SubscriberLagged(Exception):
    """The subscriber let more than the feed's queue size of blocks pile up."""


class TooManySubscribers(Exception):
    """The feed already serves its maximum number of subscribers."""


class _Subscription:
    __slots__ = ("blocks", "wakeup", "lagged")

    def __init__(self) -> None:
        self.blocks: deque[BlockView] = deque()
        self.wakeup = asyncio.Event()
        self.lagged = False


class BlockFeed:
    """Fan-out of committed blocks to a bounded number of bounded subscriber queues."""

    def __init__(self, *, queue_size: int = 64, max_subscribers: int = 256) -> None:
        if queue_size < 1 or max_subscribers < 1:
            raise ValueError("queue size and subscriber limit must be positive")
        self._queue_size = queue_size
        self._max_subscribers = max_subscribers
        self._subscriptions: set[_Subscription] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._subscriptions)

    def publish(self, block: BlockView) -> None:
        """Hand ``block`` to every subscriber; never blocks the committing code."""
        for sub in tuple(self._subscriptions):
            if len(sub.blocks) >= self._queue_size:
                sub.lagged = True
                self._subscriptions.discard(sub)
                log.info("api.subscriber_lagged height=%d queue_size=%d", block.height, self._queue_size)
            else:
                sub.blocks.append(block)
            sub.wakeup.set()

    def close(self) -> None:
        """End every subscription (node shutdown); later subscriptions end at once."""
        self._closed = True
        for sub in self._subscriptions:
            sub.wakeup.set()
        self._subscriptions.clear()

    async def subscribe(self) -> AsyncIterator[BlockView]:
        if len(self._subscriptions) >= self._max_subscribers:
            raise TooManySubscribers(f"{self._max_subscribers} subscribers already")
        sub = _Subscription()
        if not self._closed:
            self._subscriptions.add(sub)
        try:
            while True:
                if sub.lagged:
                    raise SubscriberLagged(f"more than {self._queue_size} blocks behind")
                if sub.blocks:
                    yield sub.blocks.popleft()
                elif self._closed:
                    return
                else:
                    sub.wakeup.clear()
                    await sub.wakeup.wait()
        finally:
            self._subscriptions.discard(sub)


async def _close(request: web.Request, ws: web.WebSocketResponse, code: int, message: bytes) -> None:
    """Close politely, but never wait forever on a client that stopped reading."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await ws.close(code=code, message=message)
    except TimeoutError:
        if request.transport is not None:
            request.transport.close()


async def _send_blocks(ws: web.WebSocketResponse, blocks: AsyncIterator[BlockView]) -> None:
    """Each block as one JSON text frame, until the feed ends or raises."""
    try:
        async for block in blocks:
            await ws.send_str(json.dumps({"type": "block", "block": block_doc(block)}))
    finally:
        # Close the generator now, not at garbage collection, so the feed forgets us at once.
        if isinstance(blocks, AsyncGenerator):
            await blocks.aclose()


async def _forward(request: web.Request, ws: web.WebSocketResponse, blocks: AsyncIterator[BlockView]) -> None:
    """Stream blocks, then close with the code that says why the stream ended."""
    try:
        await _send_blocks(ws, blocks)
    except SubscriberLagged:
        await _close(request, ws, CLOSE_LAGGED, b"too slow: re-sync from /v1/blocks and reconnect")
    except TooManySubscribers:
        await _close(request, ws, CLOSE_TOO_MANY, b"too many subscribers: try again later")
    except ConnectionResetError:
        return
    except Exception:
        log.exception("api.event_stream_failed")
        await _close(request, ws, CLOSE_INTERNAL, b"internal error")
    else:
        await _close(request, ws, CLOSE_SHUTDOWN, b"node shutting down")


async def close_all(sockets: set[web.WebSocketResponse]) -> None:
    """Close every event stream at shutdown; they never end by themselves."""
    if not sockets:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await asyncio.gather(
                *(ws.close(code=CLOSE_SHUTDOWN, message=b"node shutting down") for ws in tuple(sockets)),
                return_exceptions=True,
            )


async def events_handler(request: web.Request, backend: ApiBackend,
                         sockets: set[web.WebSocketResponse]) -> web.WebSocketResponse:
    # No permessage-deflate: compressing every block for every subscriber would take the
    # validator's CPU from verification, and a block's frame is mostly hashes.
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096, compress=False)
    await ws.prepare(request)
    sockets.add(ws)
    forward = asyncio.create_task(_forward(request, ws, backend.subscribe()))
    try:
        async for _ in ws:  # clients have nothing to say; reading answers pings and notices a close
            pass
    finally:
        forward.cancel()
        await asyncio.gather(forward, return_exceptions=True)
        sockets.discard(ws)
    return ws
