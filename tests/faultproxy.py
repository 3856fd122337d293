"""A loopback TCP proxy in front of each validator's p2p listener that can cut validators off.

Why it reads the handshake: every validator both listens and dials, and a link
between X and Y is kept by whichever side has the smaller key (see
node/p2p/transport.py), so half of X's links enter through the OTHER
validators' listeners.  On loopback every connection comes from 127.0.0.1, so
the source address says nothing about who dialled.  The dialler's first
websocket frame is its hello, which names its public key; the proxy unmasks
that one frame (RFC 6455 client frames are XOR-masked with a key carried in the
frame header) and so knows both ends of every link it carries: the target is
the validator it fronts, the dialler is the key in the hello.  Cutting X closes
every carried link with X at either end and refuses new ones until healed.
Nothing beyond the first frame is parsed; bytes are forwarded unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future

from node.p2p.handshake import HandshakeRefused, Hello, decode_hello

log = logging.getLogger("tests.faultproxy")

# The upgrade request plus one hello frame; a dialler that sends more before its hello is not ours.
MAX_PREAMBLE_BYTES = 16 * 1024
CHUNK_BYTES = 64 * 1024


class PreambleError(ValueError):
    """The first bytes of a connection are not an upgrade request followed by a hello frame."""


def dialler_key(preamble: bytes) -> bytes | None:
    """The public key in the hello that follows the HTTP upgrade request, or None if incomplete."""
    head_end = preamble.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    frame = preamble[head_end + 4:]
    if len(frame) < 2:
        return None
    masked, length = frame[1] & 0x80, frame[1] & 0x7F
    offset = 2
    if length == 126:
        if len(frame) < 4:
            return None
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        raise PreambleError("a hello never needs a 64-bit length")
    if not masked:
        raise PreambleError("client frames are masked")
    if len(frame) < offset + 4 + length:
        return None
    mask = frame[offset:offset + 4]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(frame[offset + 4:offset + 4 + length]))
    hello: Hello = decode_hello(payload)
    return hello.public_key


class FaultProxies:
    """One forwarding port per validator, run on a private event loop thread.

    ``fronts`` maps each validator key to the real ``listen`` port its proxy
    forwards to; ``proxy_ports`` maps it to the port the genesis names.
    """

    def __init__(self, fronts: dict[bytes, tuple[int, int]]) -> None:
        self._fronts = dict(fronts)  # key -> (proxy port, real listen port)
        self._cut: set[bytes] = set()
        self._links: dict[asyncio.Task, tuple[bytes, bytes]] = {}
        self._connections: set[asyncio.Task] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self.links_cut = 0
        self.dials_refused = 0

    # ---- control (called from the test thread)

    def start(self) -> None:
        self._thread.start()
        self._call(self._start_servers()).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._stop_servers()).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def cut(self, keys: Iterable[bytes]) -> int:
        """Cut ``keys`` off from everyone; return how many live links were closed."""
        return self._call(self._cut_off(set(keys))).result(10)

    def heal(self) -> None:
        """Let every validator link again; takes effect before this returns."""
        self._call(self._heal()).result(10)

    def live_links(self) -> list[tuple[bytes, bytes]]:
        """(dialler, target) of every identified connection the proxies carry now."""
        return self._call(self._snapshot()).result(10)

    def _call(self, coroutine) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    # ---- event loop side

    async def _snapshot(self) -> list[tuple[bytes, bytes]]:
        return list(self._links.values())

    async def _start_servers(self) -> None:
        for target, (proxy_port, listen_port) in self._fronts.items():
            server = await asyncio.start_server(
                lambda r, w, t=target, p=listen_port: self._serve(r, w, t, p), "127.0.0.1", proxy_port)
            self._servers.append(server)

    async def _stop_servers(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def _heal(self) -> None:
        self._cut.clear()

    async def _cut_off(self, keys: set[bytes]) -> int:
        self._cut |= keys
        doomed = [task for task, ends in self._links.items() if self._cut & set(ends)]
        for task in doomed:
            task.cancel()
        self.links_cut += len(doomed)
        return len(doomed)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: bytes, listen_port: int) -> None:
        if target in self._cut:
            self.dials_refused += 1
            writer.close()
            return
        task = asyncio.current_task()
        self._connections.add(task)
        upstream_writer = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", listen_port)
            # The dialler waits for the 101 answer before its hello, so bytes flow
            # both ways from the start; the link is identified once the hello passes.
            await asyncio.gather(self._sniff(reader, upstream_writer, target, task),
                                 _pump(upstream_reader, writer))
        except (ConnectionError, OSError, PreambleError, HandshakeRefused, asyncio.CancelledError) as exc:
            log.debug("faultproxy.closed target=%s error=%r", target.hex()[:8], exc)
        finally:
            self._connections.discard(task)
            self._links.pop(task, None)
            writer.close()
            if upstream_writer is not None:
                upstream_writer.close()

    async def _sniff(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: bytes, task: asyncio.Task) -> None:
        """Forward the dialler's bytes, reading its key from the hello on the way."""
        seen = b""
        while True:
            chunk = await reader.read(CHUNK_BYTES)
            if not chunk:
                raise ConnectionError("the dialler closed before its hello")
            writer.write(chunk)
            await writer.drain()
            seen += chunk
            dialler = dialler_key(seen)
            if dialler is not None:
                break
            if len(seen) > MAX_PREAMBLE_BYTES:
                raise PreambleError("no hello within the first bytes")
        if self._cut & {dialler, target}:
            self.dials_refused += 1
            raise ConnectionError("cut off")
        self._links[task] = (dialler, target)
        await _pump(reader, writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward until EOF, then half-close so the other side sees the end as well."""
    while chunk := await reader.read(CHUNK_BYTES):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
