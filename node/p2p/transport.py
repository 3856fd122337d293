"""The validator network: one authenticated websocket link to every other validator.

Observers (nodes whose keys the board registered to follow the chain) link
to validators too.  A validator serves at most ``max_observers`` of them and
sends them only status, which is what they follow by (they fetch the blocks
a status announces, node/host/catchup.py); it never takes a proposal or a
vote from an observer's link, and keeps serving its block requests and the
transactions it relays.

Every validator both listens and dials, so a link comes up as soon as either
side can reach the other.  When both dial at once, two authenticated links can
exist for a moment; both sides keep the one initiated by the smaller public key
(the same rule evaluated with the same inputs), and refuse the other as
``already_connected``.  A second link in the same direction replaces the first,
because an honest validator dials a peer only while it has no link to it: the
new link means the old one died without us noticing yet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import aiohttp
from aiohttp import web

from consensus.certificate import CommitCertificate
from consensus.messages import Proposal, Vote
from node.core.keys import Key
from node.p2p.backoff import Backoff
from node.p2p.config import NetworkConfig
from node.p2p.handshake import (
    REFUSAL_CLOSE_CODE,
    HandshakeRefused,
    Identity,
    Refusal,
    Role,
    run_handshake,
)
from node.p2p.link import PeerLink, WebSocket
from node.p2p.ratelimit import TokenBucket
from node.p2p.requests import LinkLost, PendingRequests, check_heights
from node.p2p.stats import NetworkStats
from node.p2p.wire import (
    MAX_BLOCKS_PER_RESPONSE,
    MAX_SNAPSHOTS_LISTED,
    BlockRequest,
    BlockResponse,
    ChunkRequest,
    ChunkResponse,
    Response,
    SnapshotsRequest,
    SnapshotsResponse,
    Status,
    WireMessage,
    encode,
    fit_blocks,
)

log = logging.getLogger(__name__)

P2P_PATH = "/p2p"
# Loop iterations from accept() to aiohttp's connection_made: accept task, transport, callback.
_ACCEPT_SETTLE_ITERATIONS = 4
NETWORK_KEY: web.AppKey[PeerNetwork] = web.AppKey("p2p_network")

MessageHandler = Callable[[bytes, WireMessage], Awaitable[None]]
BlockSource = Callable[[int, int], Awaitable[Sequence[tuple[bytes, CommitCertificate]]]]


class SnapshotSource(Protocol):
    """The snapshots this node serves (node/statesync/files.py)."""

    def manifests(self) -> tuple[bytes, ...]: ...

    def chunk(self, height: int, index: int) -> bytes | None: ...


def keep_new_link(local_key: bytes, peer_key: bytes, existing_role: Role, new_role: Role) -> bool:
    """Whether a newly authenticated link to ``peer_key`` replaces the one we already have.

    Both validators evaluate this with mirrored inputs and reach the same
    answer, so they keep the same link without exchanging a word about it.
    """
    if existing_role is new_role:
        return True
    new_initiator = local_key if new_role is Role.INITIATOR else peer_key
    return new_initiator == min(local_key, peer_key)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    public_key: bytes
    role: Role
    remote: str
    height: int | None
    earliest: int = 1  # the lowest height whose block the peer keeps
    observer: bool = False


def build_p2p_app(network: PeerNetwork) -> web.Application:
    """The aiohttp application that accepts validator links on ``/p2p``."""
    app = web.Application()
    app[NETWORK_KEY] = network
    app.router.add_get(P2P_PATH, _accept)
    return app


async def _accept(request: web.Request) -> web.StreamResponse:
    return await request.app[NETWORK_KEY].accept(request)


class PeerNetwork:
    """Links to the other validators, with the async API the runtime drives.

    ``on_message`` receives proposals, votes, transaction batches and status
    from authenticated peers, one link at a time (a slow handler slows that
    peer only).  Block requests are answered from ``block_source``.
    """

    def __init__(
        self,
        config: NetworkConfig,
        key: Key,
        on_message: MessageHandler | None = None,
        block_source: BlockSource | None = None,
        snapshot_source: SnapshotSource | None = None,
        local_height: Callable[[], int] | None = None,
        local_earliest: Callable[[], int] = lambda: 1,
        rng: random.Random | None = None,
        nonce_source: Callable[[int], bytes] = os.urandom,
        admits: Callable[[bytes], bool] | None = None,
        other_keys: Sequence[Key] = (),
        observes: Callable[[bytes], bool] = lambda key: False,
    ) -> None:
        """``admits`` says which keys may hold a link (by default those of ``config.validators``);
        ``observes`` which of those are observers' (never validators' of the heights being decided).
        ``other_keys`` are this validator's further keys (one it is rotating to): a dial that a peer
        refuses is tried again with the next key, since a peer that is ahead of this node may
        already admit only the new one, and this node cannot catch up without a link."""
        self._config = config
        keys = frozenset(k for k, _ in config.validators)
        self._identity = Identity(config.chain_id, config.genesis_hash, key, admits if admits is not None else keys,
                                  self._no_room_for)
        self._observes = observes
        self._keys = (key, *(other for other in other_keys if other.public_key != key.public_key))
        self._endpoints = {k: e for k, e in config.endpoints().items() if k != key.public_key}
        self._on_message = on_message
        self._block_source = block_source
        self._snapshot_source = snapshot_source
        self._local_height = local_height
        self._local_earliest = local_earliest
        self._rng = rng or random.Random()
        self._nonce_source = nonce_source
        self.stats = NetworkStats()
        self._links: dict[bytes, PeerLink] = {}
        self._idle = {k: asyncio.Event() for k in self._endpoints}
        for event in self._idle.values():
            event.set()
        self._changed = asyncio.Condition()
        self._sockets: set[WebSocket] = set()
        self._pending_handshakes = 0
        self._dialing = 0
        self._requests = PendingRequests(config.max_pending_requests)
        self._dialers: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port: int | None = None
        self._stopping = False

    @property
    def public_key(self) -> bytes:
        return self._identity.key.public_key

    @property
    def listen_port(self) -> int:
        if self._port is None:
            raise RuntimeError("the network is not started")
        return self._port

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen (on ``sock`` if given, else the configured address) and dial every peer."""
        if self._runner is not None:
            raise RuntimeError("the network is already started")
        self._stopping = False
        cfg = self._config
        self._runner = web.AppRunner(build_p2p_app(self), handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(self._runner, sock)
        else:
            site = web.TCPSite(self._runner, cfg.listen_host, cfg.listen_port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=cfg.handshake_timeout_s))
        for peer_key in self._endpoints:
            task = asyncio.create_task(self._dial_loop(peer_key), name=f"p2p-dial-{peer_key.hex()[:16]}")
            self._dialers.append(task)
        log.info("p2p.started port=%d peers=%d", self._port, len(self._endpoints))

    async def stop(self) -> None:
        """Close every link and stop listening; safe to call twice."""
        self._stopping = True
        for task in self._dialers:
            task.cancel()
        await asyncio.gather(*self._dialers, return_exceptions=True)
        self._dialers.clear()
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()
            # A peer's dial accepted just before the listener closed becomes an
            # aiohttp connection only a few loop iterations later; one that
            # arrives while aiohttp shuts down is never closed (Python 3.11).
            for _ in range(_ACCEPT_SETTLE_ITERATIONS):
                await asyncio.sleep(0)
        await asyncio.gather(*(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"shutting down")
                               for ws in list(self._sockets)), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._requests.fail_all("the network stopped")
        log.info("p2p.stopped")

    async def prune(self) -> None:
        """Close the links of keys no longer admitted: a validator removed from the set, or a rotated key."""
        for key, link in list(self._links.items()):
            if not self._identity.admits(key):
                self.stats.refuse(Refusal.UNKNOWN_VALIDATOR)
                log.info("p2p.pruned peer=%s reason=not_a_validator", link.peer)
                await link.close(aiohttp.WSCloseCode.POLICY_VIOLATION, Refusal.UNKNOWN_VALIDATOR.value)

    async def use_key(self, key: Key) -> None:
        """Present ``key`` from now on (this validator's rotated key): every link is made again with it."""
        if key.public_key == self._identity.key.public_key:
            return
        self._identity = replace(self._identity, key=key)
        log.info("p2p.rekeyed key=%s links=%d", key.address, len(self._links))
        for link in list(self._links.values()):
            await link.close(aiohttp.WSCloseCode.GOING_AWAY, "rekeyed")

    @property
    def pending_links(self) -> int:
        """Dials and handshakes in progress (a gauge for metrics)."""
        return self._dialing + self._pending_handshakes

    def peers(self) -> tuple[PeerInfo, ...]:
        return tuple(PeerInfo(link.peer_key, link.role, link.remote, link.height, link.earliest, link.observer)
                     for link in self._links.values())

    async def wait_for_peers(self, count: int) -> None:
        """Return once at least ``count`` peers have a link (the caller bounds the wait)."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._links) >= count)

    def broadcast(self, message: WireMessage) -> int:
        """Queue ``message`` for every linked peer that can use it (observers only status); return how
        many it was queued for."""
        frame = self._frame(message)
        followers_too = isinstance(message, Status)
        return sum(link.enqueue(frame) for link in list(self._links.values()) if followers_too or not link.observer)

    def _no_room_for(self, key: bytes) -> bool:
        """Whether ``key`` is an observer that would exceed ``max_observers`` (its own link it may replace)."""
        if key in self._links or not self._observes(key):
            return False
        return sum(link.observer for link in self._links.values()) >= self._config.max_observers

    def send(self, peer: bytes, message: WireMessage) -> bool:
        """Queue ``message`` for ``peer``; False (and counted as a drop) when there is no link."""
        frame = self._frame(message)
        link = self._links.get(peer)
        if link is None:
            self.stats.drops += 1
            return False
        return link.enqueue(frame)

    def _frame(self, message: WireMessage) -> bytes:
        frame = encode(message)
        if len(frame) > self._config.max_frame_bytes:
            # Every peer would close the link on it: the caller built a message the protocol forbids.
            raise ValueError(f"{type(message).__name__} is {len(frame)} bytes; frames are limited to "
                             f"{self._config.max_frame_bytes}")
        return frame

    async def request_blocks(
        self, peer: bytes, from_height: int, to_height: int,
    ) -> tuple[tuple[bytes, CommitCertificate], ...]:
        """Committed blocks from ``peer``, starting at ``from_height``; possibly fewer than asked.

        Raises LinkLost or BadResponse (both PeerError), or TimeoutError after
        ``request_timeout_s``.  Only the heights are checked here (consecutive,
        from ``from_height``): the caller verifies blocks and certificates.
        """
        if not 1 <= from_height <= to_height:
            raise ValueError("need 1 <= from_height <= to_height")
        to_height = min(to_height, from_height + MAX_BLOCKS_PER_RESPONSE - 1)
        response = await self._ask(peer, lambda request_id: BlockRequest(request_id, from_height, to_height),
                                   BlockResponse)
        assert isinstance(response, BlockResponse)
        check_heights(peer, from_height, to_height, response.blocks)
        return response.blocks

    async def request_snapshots(self, peer: bytes) -> tuple[bytes, ...]:
        """The manifests of the snapshots ``peer`` keeps, newest first, unchecked (node/statesync/sync.py)."""
        response = await self._ask(peer, SnapshotsRequest, SnapshotsResponse)
        assert isinstance(response, SnapshotsResponse)
        return response.manifests

    async def request_chunk(self, peer: bytes, height: int, index: int) -> bytes | None:
        """Chunk ``index`` of ``peer``'s snapshot of ``height`` as it sent it (None: not kept), unchecked."""
        response = await self._ask(peer, lambda request_id: ChunkRequest(request_id, height, index), ChunkResponse)
        assert isinstance(response, ChunkResponse)
        return response.chunk

    async def _ask(self, peer: bytes, request: Callable[[int], WireMessage], answer: type) -> Response:
        """Send ``request`` (built with its id) to ``peer`` and wait for its answer of type ``answer``.

        Raises LinkLost (a PeerError), or TimeoutError after ``request_timeout_s``.
        """
        link = self._links.get(peer)
        if link is None:
            raise LinkLost(f"no link to {peer.hex()}")
        request_id, future = self._requests.open(link, answer)
        try:
            link.enqueue(encode(request(request_id)))
            async with asyncio.timeout(self._config.request_timeout_s):
                return await future
        finally:
            self._requests.close(request_id)

    async def accept(self, request: web.Request) -> web.StreamResponse:
        """Serve an incoming link (the ``/p2p`` route)."""
        if self._stopping:
            raise web.HTTPServiceUnavailable(text="the validator is shutting down")
        cfg = self._config
        ws = web.WebSocketResponse(max_msg_size=cfg.max_frame_bytes + 1, heartbeat=cfg.heartbeat_s,
                                   compress=False)
        await ws.prepare(request)
        await self._serve(ws, Role.RESPONDER, None, request.remote or "?")
        return ws

    async def _dial_loop(self, peer: bytes) -> None:
        cfg = self._config
        endpoint = self._endpoints[peer]
        url = f"ws://{endpoint}{P2P_PATH}"
        backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s, self._rng)
        # Validators started together would otherwise all dial each other in the
        # same instant, and every pair would authenticate two links to keep one.
        await asyncio.sleep(self._rng.uniform(0, cfg.backoff_initial_s))
        refused = 0  # handshakes in a row that did not authenticate: each tries this node's next key
        while True:
            await self._idle[peer].wait()
            if not self._identity.admits(peer):  # removed from the set, or not added yet: nothing to say
                await asyncio.sleep(cfg.backoff_max_s)
                continue
            assert self._session is not None
            self._dialing += 1
            try:
                ws = await self._session.ws_connect(
                    url, max_msg_size=cfg.max_frame_bytes + 1, heartbeat=cfg.heartbeat_s, compress=0)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("p2p.dial_failed peer=%s address=%s error=%s", peer.hex()[:16], endpoint, exc)
                ws = None
            finally:
                self._dialing -= 1
            if ws is not None:
                if await self._serve(ws, Role.INITIATOR, peer, str(endpoint), self._dial_key(refused)):
                    backoff.reset()
                    refused = 0
                else:
                    refused += 1
            await asyncio.sleep(backoff.next_delay())

    def _dial_key(self, refused: int) -> Key:
        """The key to present on a dial: the current one, and after refusals each other key in turn."""
        current = self._identity.key
        keys = (current, *(key for key in self._keys if key.public_key != current.public_key))
        return keys[refused % len(keys)]

    async def _serve(self, ws: WebSocket, role: Role, expected: bytes | None, remote: str,
                     key: Key | None = None) -> bool:
        """Authenticate (presenting ``key``, by default the current one) and then serve a link;
        True when the peer authenticated."""
        self._sockets.add(ws)
        try:
            peer = await self._authenticate(ws, role, expected, remote, key)
            if peer is None:
                return False
            cfg = self._config
            link = PeerLink(ws, peer, role, remote, cfg.outbox_size, cfg.outbox_bytes, cfg.max_frame_bytes,
                            self._bucket(), self.stats)
            if not await self._register(link):
                return True
            try:
                if self._local_height is not None:
                    link.enqueue(encode(Status(self._local_height(), self._local_earliest())))
                await link.run(self._dispatch)
            finally:
                await self._unregister(link)
            return True
        finally:
            self._sockets.discard(ws)
            await ws.close()

    async def _authenticate(self, ws: WebSocket, role: Role, expected: bytes | None, remote: str,
                            key: Key | None) -> bytes | None:
        if self._pending_handshakes >= self._config.max_pending_handshakes:
            await self._refuse(ws, role, remote, HandshakeRefused(Refusal.TOO_MANY_PENDING))
            return None
        self._pending_handshakes += 1
        try:
            async with asyncio.timeout(self._config.handshake_timeout_s):
                identity = self._identity if key is None else replace(self._identity, key=key)
                return await run_handshake(ws, identity, role, expected, self._nonce_source)
        except HandshakeRefused as exc:
            await self._refuse(ws, role, remote, exc)
        except TimeoutError:
            await self._refuse(ws, role, remote, HandshakeRefused(Refusal.TIMEOUT))
        except ConnectionError as exc:
            await self._refuse(ws, role, remote, HandshakeRefused(Refusal.REMOTE_CLOSED, str(exc)))
        finally:
            self._pending_handshakes -= 1
        return None

    async def _refuse(self, ws: WebSocket, role: Role, remote: str, refusal: HandshakeRefused,
                      peer: bytes | None = None) -> None:
        self.stats.refuse(refusal.reason)
        log.warning("p2p.refused reason=%s role=%s remote=%s peer=%s detail=%r",
                    refusal.reason.value, role.name.lower(), remote,
                    peer.hex()[:16] if peer else "-", refusal.detail)
        await ws.close(code=REFUSAL_CLOSE_CODE, message=refusal.reason.value.encode())

    def _bucket(self) -> TokenBucket:
        cfg = self._config
        return TokenBucket(cfg.rate_frames_per_s, cfg.rate_burst, cfg.flood_strikes,
                           asyncio.get_running_loop().time)

    async def _register(self, link: PeerLink) -> bool:
        if not self._identity.admits(link.peer_key):  # pruned while its handshake ran
            await self._refuse(link.ws, link.role, link.remote, HandshakeRefused(Refusal.UNKNOWN_VALIDATOR),
                               link.peer_key)
            return False
        if self._no_room_for(link.peer_key):  # another observer took the last place while this one shook hands
            await self._refuse(link.ws, link.role, link.remote, HandshakeRefused(Refusal.TOO_MANY_OBSERVERS),
                               link.peer_key)
            return False
        link.observer = self._observes(link.peer_key)
        existing = self._links.get(link.peer_key)
        if existing is not None and not keep_new_link(self.public_key, link.peer_key, existing.role, link.role):
            await self._refuse(link.ws, link.role, link.remote,
                               HandshakeRefused(Refusal.ALREADY_CONNECTED), link.peer_key)
            return False
        # Installed before the old link is closed, so nothing can slip in between.
        self._links[link.peer_key] = link
        if link.peer_key in self._idle:
            self._idle[link.peer_key].clear()
        log.info("p2p.linked peer=%s role=%s remote=%s observer=%s", link.peer, link.role.name.lower(), link.remote,
                 link.observer)
        if existing is not None:
            self.stats.superseded += 1
            log.info("p2p.superseded peer=%s old_role=%s new_role=%s",
                     link.peer, existing.role.name.lower(), link.role.name.lower())
            link.adopt(existing.take_outbox())
            await existing.close(aiohttp.WSCloseCode.POLICY_VIOLATION, "superseded")
        async with self._changed:
            self._changed.notify_all()
        return True

    async def _unregister(self, link: PeerLink) -> None:
        self._requests.fail_link(link)
        if self._links.get(link.peer_key) is not link:
            return
        del self._links[link.peer_key]
        if link.peer_key in self._idle:
            self._idle[link.peer_key].set()
        log.info("p2p.unlinked peer=%s role=%s", link.peer, link.role.name.lower())
        async with self._changed:
            self._changed.notify_all()

    async def _dispatch(self, link: PeerLink, message: WireMessage) -> None:
        match message:
            case BlockRequest():
                await self._answer(link, message)
                return
            case SnapshotsRequest() | ChunkRequest():
                await self._answer_snapshot(link, message)
                return
            case BlockResponse() | SnapshotsResponse() | ChunkResponse():
                if not self._requests.resolve(link, message):
                    self.stats.unsolicited_responses += 1
                return
            case Status():
                link.height, link.earliest = message.height, message.earliest
            case Proposal() | Vote() if link.observer:
                self.stats.observer_consensus += 1  # an observer never votes, nor relays votes to validators
                return
        if self._on_message is None:
            return
        try:
            await self._on_message(link.peer_key, message)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("p2p.handler_failed peer=%s type=%s", link.peer, type(message).__name__)

    async def _answer(self, link: PeerLink, request: BlockRequest) -> None:
        blocks: Sequence[tuple[bytes, CommitCertificate]] = ()
        if self._block_source is not None:
            to_height = min(request.to_height, request.from_height + MAX_BLOCKS_PER_RESPONSE - 1)
            try:
                blocks = await self._block_source(request.from_height, to_height)
            except Exception:
                log.exception("p2p.block_source_failed peer=%s from=%d to=%d",
                              link.peer, request.from_height, to_height)
        link.enqueue(encode(BlockResponse(request.request_id, fit_blocks(blocks, self._config.max_frame_bytes))))

    async def _answer_snapshot(self, link: PeerLink, request: SnapshotsRequest | ChunkRequest) -> None:
        """Serve the snapshot list or a chunk; a node that keeps no snapshots answers with none."""
        source = self._snapshot_source
        if isinstance(request, SnapshotsRequest):
            manifests = () if source is None else source.manifests()[:MAX_SNAPSHOTS_LISTED]
            link.enqueue(encode(SnapshotsResponse(request.request_id, manifests)))
            return
        chunk = None
        if source is not None:
            try:
                chunk = await asyncio.to_thread(source.chunk, request.height, request.index)
            except OSError as exc:
                log.error("p2p.snapshot_source_failed peer=%s height=%d index=%d reason=%s",
                          link.peer, request.height, request.index, exc)
        frame = encode(ChunkResponse(request.request_id, chunk))
        if len(frame) > self._config.max_frame_bytes:
            log.warning("p2p.chunk_too_large peer=%s height=%d index=%d bytes=%d", link.peer, request.height,
                        request.index, len(frame))
            frame = encode(ChunkResponse(request.request_id, None))
        link.enqueue(frame)
