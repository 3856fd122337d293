"""One authenticated link to a validator: a bounded outbox and a guarded reader.

The outbox drops its oldest frame when full rather than blocking the runtime
or growing without bound: a slow or stuck peer must never stall consensus with
the others, and the runtime re-sends proposals and votes on its own schedule.
The reader admits frames through the peer's token bucket and closes the link
on the first frame that is oversized, undecodable or of the wrong kind.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from node.p2p.framing import WireError
from node.p2p.handshake import Role
from node.p2p.ratelimit import TokenBucket, frame_cost
from node.p2p.stats import NetworkStats
from node.p2p.wire import WireMessage, decode

log = logging.getLogger(__name__)

WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse
Dispatch = Callable[["PeerLink", WireMessage], Awaitable[None]]

_CLOSING = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class PeerLink:
    def __init__(
        self,
        ws: WebSocket,
        peer_key: bytes,
        role: Role,
        remote: str,
        outbox_size: int,
        outbox_bytes: int,
        max_frame_bytes: int,
        bucket: TokenBucket,
        stats: NetworkStats,
    ) -> None:
        self.ws = ws
        self.peer_key = peer_key
        self.role = role
        self.remote = remote
        self.height: int | None = None  # from the peer's status: its committed height
        self.earliest = 1  # and the lowest height whose block it keeps
        self.observer = False  # an observer's link: it follows the chain and is sent only status
        self._outbox: deque[bytes] = deque()
        self._outbox_size = outbox_size
        self._outbox_bytes = outbox_bytes
        self._queued_bytes = 0
        self._max_frame_bytes = max_frame_bytes
        self._wake = asyncio.Event()
        self._bucket = bucket
        self._stats = stats

    @property
    def peer(self) -> str:
        return self.peer_key.hex()[:16]

    def enqueue(self, frame: bytes) -> bool:
        """Queue ``frame``; False when the link is already closed (the frame is dropped)."""
        if self.ws.closed:
            self._stats.drops += 1
            return False
        assert len(frame) <= self._outbox_bytes, "a frame larger than the outbox cannot be queued"
        while self._outbox and (len(self._outbox) >= self._outbox_size
                                or self._queued_bytes + len(frame) > self._outbox_bytes):
            self._queued_bytes -= len(self._outbox.popleft())
            self._stats.drops += 1
        self._outbox.append(frame)
        self._queued_bytes += len(frame)
        self._wake.set()
        return True

    def take_outbox(self) -> list[bytes]:
        """Remove and return the unsent frames, for the link that supersedes this one."""
        frames = list(self._outbox)
        self._outbox.clear()
        self._queued_bytes = 0
        return frames

    def adopt(self, frames: list[bytes]) -> None:
        """Queue frames left unsent by a superseded link to the same peer, ahead of newer ones."""
        if not frames:
            return
        newer = self.take_outbox()
        for frame in frames + newer:
            self.enqueue(frame)

    async def run(self, dispatch: Dispatch) -> None:
        """Serve the link until either side closes it."""
        writer = asyncio.create_task(self._write_loop(), name=f"p2p-writer-{self.peer}")
        try:
            await self._read_loop(dispatch)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._stats.drops += len(self.take_outbox())
            await self.ws.close()

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode("utf-8"))

    async def _write_loop(self) -> None:
        while not self.ws.closed:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                frame = self._outbox.popleft()
                self._queued_bytes -= len(frame)
                try:
                    await self.ws.send_bytes(frame)
                except ConnectionError as exc:
                    log.info("p2p.send_failed peer=%s error=%r", self.peer, str(exc))
                    return
                self._stats.frames_out += 1
                self._stats.bytes_out += len(frame)

    async def _read_loop(self, dispatch: Dispatch) -> None:
        while True:
            message = await self.ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                if not await self._admit(message.data, dispatch):
                    return
            elif message.type is aiohttp.WSMsgType.ERROR:
                code = getattr(message.data, "code", None)
                if code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                    self._stats.oversized_frames += 1
                    log.warning("p2p.closed peer=%s reason=oversized_frame", self.peer)
                else:
                    log.info("p2p.link_error peer=%s error=%r", self.peer, str(message.data))
                return
            elif message.type in _CLOSING:
                return
            else:
                self._stats.bad_frames += 1
                log.warning("p2p.closed peer=%s reason=non_binary_frame type=%s",
                            self.peer, message.type.name)
                await self.close(aiohttp.WSCloseCode.UNSUPPORTED_DATA, "binary frames only")
                return

    async def _admit(self, data: bytes, dispatch: Dispatch) -> bool:
        self._stats.frames_in += 1
        self._stats.bytes_in += len(data)
        admission = self._bucket.admit(frame_cost(len(data)))
        if admission.flooding:
            self._stats.flood_disconnects += 1
            log.warning("p2p.closed peer=%s reason=flooding", self.peer)
            await self.close(aiohttp.WSCloseCode.POLICY_VIOLATION, "flooding")
            return False
        if admission.delay_s > 0:
            self._stats.throttled += 1
            await asyncio.sleep(admission.delay_s)
        try:
            decoded = decode(data, self._max_frame_bytes)
        except WireError as exc:
            self._stats.bad_frames += 1
            log.warning("p2p.closed peer=%s reason=bad_frame code=%s detail=%r", self.peer, exc.code, str(exc))
            await self.close(aiohttp.WSCloseCode.UNSUPPORTED_DATA, exc.code)
            return False
        await dispatch(self, decoded)
        return True
