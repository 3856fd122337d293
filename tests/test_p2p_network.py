"""Validators linked over real websockets on 127.0.0.1: gossip, refusals, bad frames, restarts, catch-up."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable

import aiohttp
import pytest

from consensus.certificate import CommitCertificate
from consensus.messages import MessageType, Proposal, Vote
from node.core.keys import KeyPair, verify_signature
from node.p2p import (
    BadResponse,
    BlockResponse,
    LinkLost,
    NetworkConfig,
    PeerNetwork,
    Refusal,
    Status,
    TxBatch,
    encode,
)
from node.p2p.handshake import HandshakeRefused, Identity, Role, run_handshake
from node.p2p.transport import P2P_PATH

CHAIN = "som-test"
GENESIS = bytes.fromhex("5e" * 32)
WAIT_S = 15  # generous bound for any condition below; never a speed assertion


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def rebind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Node:
    """One validator's network plus everything it received, in order."""

    def __init__(self, key: KeyPair, config: NetworkConfig, **kwargs) -> None:
        self.key = key
        self.inbox: asyncio.Queue[tuple[bytes, object]] = asyncio.Queue()
        self.net = PeerNetwork(config, key, on_message=self._receive, **kwargs)

    async def _receive(self, peer: bytes, message: object) -> None:
        await self.inbox.put((peer, message))

    async def next_of(self, kind: type) -> tuple[bytes, object]:
        async with asyncio.timeout(WAIT_S):
            while True:
                peer, message = await self.inbox.get()
                if isinstance(message, kind):
                    return peer, message


class Cluster:
    """N validator identities with ports reserved up front; networks started on demand."""

    def __init__(self, n: int, **overrides) -> None:
        self.keys = [KeyPair.generate() for _ in range(n)]
        self.socks = [free_socket() for _ in range(n)]
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.overrides = dict(backoff_initial_s=0.05, backoff_max_s=0.5, handshake_timeout_s=5.0) | overrides
        self.config = self.config_for(CHAIN, GENESIS)
        self.nodes: list[Node] = []
        self.sessions: list[aiohttp.ClientSession] = []

    def config_for(self, chain: str, genesis: bytes, extra: list[KeyPair] = ()) -> NetworkConfig:
        validators = tuple((k.public_key, f"127.0.0.1:{p}") for k, p in zip(self.keys, self.ports))
        validators += tuple((k.public_key, "127.0.0.1:1") for k in extra)
        return NetworkConfig(chain_id=chain, genesis_hash=genesis, validators=validators, **self.overrides)

    async def start(self, i: int, **kwargs) -> Node:
        sock = self.socks[i] if self.socks[i] is not None else rebind(self.ports[i])
        self.socks[i] = None
        node = Node(self.keys[i], self.config, **kwargs)
        self.nodes.append(node)
        await node.net.start(sock)
        return node

    async def session(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()
        self.sessions.append(session)
        return session

    async def close(self) -> None:
        for node in self.nodes:
            await node.net.stop()
        for session in self.sessions:
            await session.close()
        for sock in self.socks:
            if sock is not None:
                sock.close()


@pytest.fixture
async def cluster_factory():
    clusters: list[Cluster] = []

    def make(n: int, **overrides) -> Cluster:
        cluster = Cluster(n, **overrides)
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            await cluster.close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.02)


async def settled(nodes: list[Node]) -> None:
    """Wait until every pair holds exactly one agreed link and no dial or handshake is under way.

    Validators started together dial each other at once, and the tie-break may
    still replace a link (losing frames in flight on it); after this, it cannot.
    """
    await until(lambda: all(len(n.net.peers()) == len(nodes) - 1 and n.net.pending_links == 0 for n in nodes)
                and _links_agree(nodes))


def signed_vote(key: KeyPair, kind: MessageType, height: int, round: int, vid: bytes | None) -> Vote:
    unsigned = Vote(kind, height, round, vid, key.public_key, bytes(64))
    return Vote(kind, height, round, vid, key.public_key, key.sign(unsigned.signing_bytes(CHAIN)))


def signed_proposal(key: KeyPair, height: int, round: int, value: bytes) -> Proposal:
    unsigned = Proposal(height, round, value, -1, key.public_key, bytes(64))
    return Proposal(height, round, value, -1, key.public_key, key.sign(unsigned.signing_bytes(CHAIN)))


async def raw_client(cluster: Cluster, target: int) -> aiohttp.ClientWebSocketResponse:
    """A hand-driven websocket to validator ``target``, not yet authenticated."""
    session = await cluster.session()
    return await session.ws_connect(f"http://127.0.0.1:{cluster.ports[target]}{P2P_PATH}", compress=0)


async def authenticated_client(cluster: Cluster, target: int, key: KeyPair) -> aiohttp.ClientWebSocketResponse:
    ws = await raw_client(cluster, target)
    identity = Identity(CHAIN, GENESIS, key, frozenset(k.public_key for k in cluster.keys))
    await run_handshake(ws, identity, Role.INITIATOR, cluster.keys[target].public_key)
    return ws


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """Read until the server closes ``ws``; return the close message."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return message


async def test_three_validators_link_and_exchange_signed_consensus_messages(cluster_factory):
    cluster = cluster_factory(3)
    nodes = [await cluster.start(i) for i in range(3)]
    async with asyncio.timeout(WAIT_S):
        for node in nodes:
            await node.net.wait_for_peers(2)
    await settled(nodes)

    proposal = signed_proposal(cluster.keys[0], 1, 0, b"block bytes at height 1")
    assert nodes[0].net.broadcast(proposal) == 2
    for node in nodes[1:]:
        peer, got = await node.next_of(Proposal)
        assert peer == cluster.keys[0].public_key and got == proposal
        assert verify_signature(got.proposer, got.signing_bytes(CHAIN), got.signature)

    for i, node in enumerate(nodes):
        node.net.broadcast(signed_vote(cluster.keys[i], MessageType.PREVOTE, 1, 0, proposal.value_id))
    for i, node in enumerate(nodes):
        senders = set()
        for _ in range(2):
            peer, vote = await node.next_of(Vote)
            assert vote.validator == peer != cluster.keys[i].public_key
            assert verify_signature(vote.validator, vote.signing_bytes(CHAIN), vote.signature)
            senders.add(peer)
        assert len(senders) == 2

    assert nodes[1].net.send(cluster.keys[2].public_key, TxBatch((b"tx-1", b"tx-2")))
    peer, batch = await nodes[2].next_of(TxBatch)
    assert peer == cluster.keys[1].public_key and batch.txs == (b"tx-1", b"tx-2")
    assert all(n.net.stats.frames_in > 0 and n.net.stats.bytes_out > 0 for n in nodes)


def _links_agree(nodes: list[Node]) -> bool:
    """Each link is an initiator on one side and a responder on the other."""
    roles = {(n.net.public_key, p.public_key): p.role for n in nodes for p in n.net.peers()}
    return all(roles.get((b, a)) is not None and roles[(b, a)] is not role for (a, b), role in roles.items())


async def test_key_outside_the_genesis_is_refused(cluster_factory, caplog):
    cluster = cluster_factory(2)
    node = await cluster.start(0)
    outsider = KeyPair.generate()
    ws = await raw_client(cluster, 0)
    identity = Identity(CHAIN, GENESIS, outsider, frozenset(k.public_key for k in cluster.keys + [outsider]))
    with caplog.at_level(logging.WARNING, logger="node.p2p"):
        with pytest.raises(HandshakeRefused) as excinfo:
            await asyncio.wait_for(run_handshake(ws, identity, Role.INITIATOR, cluster.keys[0].public_key), WAIT_S)
    assert excinfo.value.reason is Refusal.REMOTE_CLOSED and excinfo.value.detail == "unknown_validator"
    assert node.net.stats.refusals[Refusal.UNKNOWN_VALIDATOR] == 1
    assert "reason=unknown_validator" in caplog.text
    assert node.net.peers() == ()


@pytest.mark.parametrize(
    ("chain", "genesis", "reason"),
    [("som-other", GENESIS, Refusal.CHAIN_ID), (CHAIN, bytes(32), Refusal.GENESIS)],
)
async def test_validator_of_another_chain_is_refused_both_ways(cluster_factory, chain, genesis, reason):
    cluster = cluster_factory(2)
    home = await cluster.start(0)
    # Validator 1 runs a real network configured for another chain: it dials and is dialled.
    stranger = Node(cluster.keys[1], cluster.config_for(chain, genesis))
    cluster.nodes.append(stranger)
    await stranger.net.start(cluster.socks[1])
    cluster.socks[1] = None
    await until(lambda: home.net.stats.refusals[reason] >= 1 and stranger.net.stats.refusals[reason] >= 1)
    assert home.net.peers() == () and stranger.net.peers() == ()


async def test_replayed_handshake_is_refused(cluster_factory, caplog):
    cluster = cluster_factory(2)
    node = await cluster.start(0)
    # Record what a genuine validator 1 sends during a real, successful handshake.
    session = await cluster.session()
    ws = await session.ws_connect(f"http://127.0.0.1:{cluster.ports[0]}{P2P_PATH}", compress=0)
    recorded: list[bytes] = []
    send = ws.send_bytes

    async def recording_send(data: bytes, *args, **kwargs) -> None:
        recorded.append(data)
        await send(data, *args, **kwargs)

    ws.send_bytes = recording_send
    identity = Identity(CHAIN, GENESIS, cluster.keys[1], frozenset(k.public_key for k in cluster.keys))
    await asyncio.wait_for(run_handshake(ws, identity, Role.INITIATOR, cluster.keys[0].public_key), WAIT_S)
    await until(lambda: len(node.net.peers()) == 1)
    await ws.close()
    await until(lambda: node.net.peers() == ())

    # An eavesdropper replays the recording on a new connection.
    replay = await raw_client(cluster, 0)
    with caplog.at_level(logging.WARNING, logger="node.p2p"):
        await replay.send_bytes(recorded[0])
        hello = await asyncio.wait_for(replay.receive(), WAIT_S)
        assert hello.type is aiohttp.WSMsgType.BINARY
        await replay.send_bytes(recorded[1])
        closed = await closed_with(replay)
    assert closed.extra == Refusal.BAD_SIGNATURE.value
    assert node.net.stats.refusals[Refusal.BAD_SIGNATURE] == 1
    assert "reason=bad_signature" in caplog.text
    assert node.net.peers() == ()


@pytest.mark.parametrize(
    ("frame", "counter"),
    [
        (os.urandom(64), "bad_frames"),
        (encode(Status(1))[:-1], "bad_frames"),
        (b"\x92\x06" + b"\x91" * 10_000, "bad_frames"),
        (encode(TxBatch((b"x" * 512,) * 100)), "oversized_frames"),
    ],
    ids=["garbage", "truncated", "deep-nesting", "oversized"],
)
async def test_bad_frame_closes_only_that_link(cluster_factory, frame, counter):
    cluster = cluster_factory(3, max_frame_bytes=16 * 1024)
    home = await cluster.start(0)
    honest = await cluster.start(1)
    await settled([home, honest])
    attacker = await authenticated_client(cluster, 0, cluster.keys[2])
    await until(lambda: len(home.net.peers()) == 2)

    await attacker.send_bytes(frame)
    closed = await closed_with(attacker)
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert getattr(home.net.stats, counter) == 1
    await until(lambda: [p.public_key for p in home.net.peers()] == [cluster.keys[1].public_key])

    # The receiver keeps serving its honest peer.
    vote = signed_vote(cluster.keys[1], MessageType.PRECOMMIT, 3, 1, None)
    assert honest.net.send(cluster.keys[0].public_key, vote)
    assert (await home.next_of(Vote))[1] == vote


async def test_text_frame_closes_the_link(cluster_factory):
    cluster = cluster_factory(2)
    home = await cluster.start(0)
    ws = await authenticated_client(cluster, 0, cluster.keys[1])
    await ws.send_str("hello")
    await closed_with(ws)
    assert home.net.stats.bad_frames == 1


async def test_reconnects_after_the_remote_restarts(cluster_factory):
    cluster = cluster_factory(2)
    a = await cluster.start(0)
    b = await cluster.start(1)
    async with asyncio.timeout(WAIT_S):
        await a.net.wait_for_peers(1)
    await b.net.stop()
    cluster.nodes.remove(b)
    await until(lambda: a.net.peers() == ())

    b2 = await cluster.start(1)
    await settled([a, b2])
    vote = signed_vote(cluster.keys[0], MessageType.PREVOTE, 9, 0, bytes(32))
    assert a.net.send(cluster.keys[1].public_key, vote)
    assert (await b2.next_of(Vote)) == (cluster.keys[0].public_key, vote)


async def test_flooding_peer_is_throttled_then_disconnected(cluster_factory, caplog):
    cluster = cluster_factory(2, rate_frames_per_s=200, rate_burst=20, flood_strikes=40)
    home = await cluster.start(0)
    ws = await authenticated_client(cluster, 0, cluster.keys[1])
    frame = encode(Status(5))
    with caplog.at_level(logging.WARNING, logger="node.p2p"):
        try:
            for _ in range(2000):
                await ws.send_bytes(frame)
        except ConnectionError:
            pass
        await closed_with(ws)
    assert home.net.stats.throttled > 0
    assert home.net.stats.flood_disconnects == 1
    assert "reason=flooding" in caplog.text


async def test_block_request_is_answered_from_the_block_source(cluster_factory):
    cluster = cluster_factory(2)
    chain = {h: (f"block {h}".encode(), _certificate(cluster.keys[1], h)) for h in range(1, 11)}
    asked: list[tuple[int, int]] = []

    async def blocks(from_height: int, to_height: int):
        asked.append((from_height, to_height))
        return [chain[h] for h in range(from_height, min(to_height, 10) + 1)]

    a = await cluster.start(0)
    b = await cluster.start(1, block_source=blocks, local_height=lambda: 10)
    await settled([a, b])
    got = await a.net.request_blocks(cluster.keys[1].public_key, 4, 20)
    assert list(got) == [chain[h] for h in range(4, 11)]
    assert asked == [(4, 20)]
    # The status sent on linking tells the requester who is ahead.
    await until(lambda: a.net.peers()[0].height == 10)


async def test_block_request_times_out_when_the_peer_stays_silent(cluster_factory):
    cluster = cluster_factory(2, request_timeout_s=0.3)
    a = await cluster.start(0)
    silent = await authenticated_client(cluster, 0, cluster.keys[1])
    await until(lambda: len(a.net.peers()) == 1)
    with pytest.raises(TimeoutError):
        await a.net.request_blocks(cluster.keys[1].public_key, 1, 5)
    await silent.close()
    await until(lambda: a.net.peers() == ())
    with pytest.raises(LinkLost):
        await a.net.request_blocks(cluster.keys[1].public_key, 1, 5)


async def test_unsolicited_block_response_is_ignored(cluster_factory):
    cluster = cluster_factory(2)
    a = await cluster.start(0)
    ws = await authenticated_client(cluster, 0, cluster.keys[1])
    await ws.send_bytes(encode(BlockResponse(77, ())))
    await ws.send_bytes(encode(Status(3)))
    peer, status = await a.next_of(Status)
    assert status == Status(3)
    assert a.net.stats.unsolicited_responses == 1
    await ws.close()


def _certificate(key: KeyPair, height: int) -> CommitCertificate:
    vid = bytes([height]) * 32
    return CommitCertificate(height, 0, vid, (signed_vote(key, MessageType.PRECOMMIT, height, 0, vid),))


async def test_second_link_in_the_same_direction_replaces_the_first(cluster_factory):
    cluster = cluster_factory(2)
    home = await cluster.start(0)
    stale = await authenticated_client(cluster, 0, cluster.keys[1])
    await until(lambda: len(home.net.peers()) == 1)
    fresh = await authenticated_client(cluster, 0, cluster.keys[1])
    closed = await closed_with(stale)
    assert closed.extra == "superseded"
    assert home.net.stats.superseded == 1
    assert len(home.net.peers()) == 1
    await fresh.send_bytes(encode(Status(4)))
    assert (await home.next_of(Status)) == (cluster.keys[1].public_key, Status(4))


async def test_block_response_for_the_wrong_heights_is_an_error(cluster_factory):
    cluster = cluster_factory(2)

    async def wrong_blocks(from_height: int, to_height: int):
        return [(b"block", _certificate(cluster.keys[1], from_height + 1))]

    a = await cluster.start(0)
    b = await cluster.start(1, block_source=wrong_blocks)
    await settled([a, b])
    with pytest.raises(BadResponse):
        await a.net.request_blocks(cluster.keys[1].public_key, 2, 3)


async def test_pending_request_fails_as_soon_as_its_link_closes(cluster_factory):
    cluster = cluster_factory(2, request_timeout_s=WAIT_S * 2)
    a = await cluster.start(0)
    silent = await authenticated_client(cluster, 0, cluster.keys[1])
    await until(lambda: len(a.net.peers()) == 1)
    request = asyncio.create_task(a.net.request_blocks(cluster.keys[1].public_key, 1, 5))
    try:
        async with asyncio.timeout(WAIT_S):
            while (await silent.receive()).type is not aiohttp.WSMsgType.BINARY:
                pass
        await silent.close()
        with pytest.raises(LinkLost):
            await asyncio.wait_for(request, WAIT_S)
    finally:
        request.cancel()


async def test_a_message_too_large_for_a_frame_is_refused_at_the_sender(cluster_factory):
    cluster = cluster_factory(2, max_frame_bytes=4096)
    a = await cluster.start(0)
    with pytest.raises(ValueError, match="frames are limited"):
        a.net.broadcast(TxBatch((b"x" * 500,) * 10))
    with pytest.raises(ValueError, match="frames are limited"):
        a.net.send(cluster.keys[1].public_key, TxBatch((b"x" * 500,) * 10))
    assert not a.net.send(cluster.keys[1].public_key, Status(1))  # no link yet: dropped, counted
    assert a.net.stats.drops == 1


async def test_silent_connection_is_refused_after_the_handshake_timeout(cluster_factory, caplog):
    cluster = cluster_factory(2, handshake_timeout_s=0.3)
    home = await cluster.start(0)
    silent = await raw_client(cluster, 0)
    with caplog.at_level(logging.WARNING, logger="node.p2p"):
        closed = await closed_with(silent)
    assert closed.extra == Refusal.TIMEOUT.value
    assert home.net.stats.refusals[Refusal.TIMEOUT] == 1
    assert "reason=timeout" in caplog.text


async def test_unauthenticated_connections_are_bounded(cluster_factory):
    cluster = cluster_factory(2, max_pending_handshakes=2, handshake_timeout_s=WAIT_S * 2)
    home = await cluster.start(0)
    # Linked to its only peer, the node dials nobody, so every pending link below is ours.
    await settled([home, await cluster.start(1)])
    waiting = [await raw_client(cluster, 0) for _ in range(2)]
    await until(lambda: home.net.pending_links == 2)
    extra = await raw_client(cluster, 0)
    closed = await closed_with(extra)
    assert closed.extra == Refusal.TOO_MANY_PENDING.value
    assert home.net.stats.refusals[Refusal.TOO_MANY_PENDING] == 1
    for ws in waiting:
        await ws.close()
    await until(lambda: home.net.pending_links == 0)


@pytest.mark.parametrize(
    "restarts",
    [pytest.param(3, id="short"), pytest.param(40, id="long", marks=pytest.mark.long)],
)
async def test_mesh_heals_after_seeded_restarts(cluster_factory, restarts):
    seed = int(os.environ.get("SOMNODE_SEED", random.randrange(2**32)))
    print(f"replay with SOMNODE_SEED={seed}")
    rng = random.Random(seed)
    cluster = cluster_factory(4)
    nodes = {i: await cluster.start(i, rng=random.Random(rng.random())) for i in range(4)}
    for step in range(restarts):
        await settled(list(nodes.values()))
        victim = rng.randrange(4)
        await nodes[victim].net.stop()
        cluster.nodes.remove(nodes[victim])
        nodes[victim] = await cluster.start(victim, rng=random.Random(rng.random()))
        await settled(list(nodes.values()))
        sender = rng.randrange(4)
        vote = signed_vote(cluster.keys[sender], MessageType.PREVOTE, step + 1, 0, None)
        assert nodes[sender].net.broadcast(vote) == 3, f"seed={seed} step={step}"
        for i, node in nodes.items():
            if i != sender:
                assert (await node.next_of(Vote)) == (cluster.keys[sender].public_key, vote), f"seed={seed}"


async def test_a_stopped_network_can_start_again(cluster_factory):
    cluster = cluster_factory(2)
    a = await cluster.start(0)
    b = await cluster.start(1)
    await settled([a, b])
    with pytest.raises(RuntimeError):
        await a.net.start()
    await a.net.stop()
    await a.net.stop()
    await until(lambda: b.net.peers() == ())
    await a.net.start(rebind(cluster.ports[0]))
    await settled([a, b])
    assert b.net.send(cluster.keys[0].public_key, Status(8))
    assert (await a.next_of(Status)) == (cluster.keys[1].public_key, Status(8))


async def test_a_validator_behind_its_own_rotation_links_with_its_new_key(cluster_factory):
    """Node 1 still presents its old key, which node 0 (ahead of it) no longer admits: its dials
    are refused, and it tries its new key next, which node 0 admits."""
    cluster = cluster_factory(2)
    old, new = cluster.keys[1], KeyPair.generate()
    admitted = {cluster.keys[0].public_key, new.public_key}
    ahead = await cluster.start(0, admits=admitted.__contains__)
    behind = await cluster.start(1, admits=lambda key: key == cluster.keys[0].public_key, other_keys=[new])
    await until(lambda: [p.public_key for p in ahead.net.peers()] == [new.public_key])
    assert ahead.net.stats.refusals[Refusal.UNKNOWN_VALIDATOR] >= 1, "the old key was tried first"
    assert behind.net.public_key == old.public_key, "the node's own key changes only when its ledger says so"


async def test_a_removed_validators_link_is_closed_and_stays_closed(cluster_factory):
    cluster = cluster_factory(2)
    admitted = {k.public_key for k in cluster.keys}
    nodes = [await cluster.start(i, admits=admitted.__contains__) for i in range(2)]
    await settled(nodes)
    admitted.discard(cluster.keys[1].public_key)
    await nodes[0].net.prune()
    await until(lambda: nodes[0].net.peers() == ())
    refused = nodes[0].net.stats.refusals[Refusal.UNKNOWN_VALIDATOR]
    await asyncio.sleep(1.0)  # two of node 1's redial intervals: it keeps trying
    assert nodes[0].net.peers() == ()
    assert nodes[0].net.stats.refusals[Refusal.UNKNOWN_VALIDATOR] > refused, "node 1's own dials are refused"
