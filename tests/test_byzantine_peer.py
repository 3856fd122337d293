"""A Byzantine validator on the real network: three honest processes and the test holding validator 4's key.

Validator 4 equivocates as proposer (two valid blocks for one height and round,
sent to different validators), equivocates in votes (prevotes and precommits
for two values, which are ids of blocks nobody proposed), sends messages for
long-committed and far-future heights, and over raw authenticated websockets
sends garbage, an oversized frame and a flood.  The honest three must commit
one history (same block hash at every height), record evidence naming
validator 4, count and close the bad links, and keep committing.
"""

from __future__ import annotations

import asyncio
import os
import random
import urllib.request

import aiohttp

from consensus.messages import MessageType
from node.core.address import encode_address
from node.core.block import block_hash
from node.core.keys import read_key_file
from node.p2p.framing import MAX_FRAME_BYTES
from node.p2p.wire import encode
from tests.byzantine import ByzantineValidator
from tests.localnet import make_network, node_log, running

HONEST = [0, 1, 2]
BYZANTINE = 3
WAIT_S = 60.0
# A link's burst plus its strike allowance at the node.p2p.config defaults (4000 + 2000).
FLOOD_ALLOWANCE = 6_000
# The background flood's cap: it is stopped long before, once the validators have been checked under it.
FLOOD_FRAMES = 1_000_000


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[-1])
    return 0.0


async def poll(predicate, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await asyncio.to_thread(predicate):
        assert asyncio.get_running_loop().time() < deadline, f"not reached in time: {what}"
        await asyncio.sleep(0.2)


async def heights(net) -> list[int]:
    return [(await asyncio.to_thread(net.status, i) or {}).get("height", -1) for i in HONEST]


def one_history(net, first: int, last: int) -> None:
    """Every honest validator holds the same block and app hash at every height in [first, last]."""
    for height in range(first, last + 1):
        blocks = [net.client(i).block(height) for i in HONEST]
        assert len({b["hash"] for b in blocks}) == 1, f"fork at height {height}"
        assert len({b["app_hash"] for b in blocks}) == 1, f"app hashes disagree at height {height}"


async def keeps_committing(net, start: int, more: int = 3) -> int:
    top = max(await heights(net)) + more
    await asyncio.to_thread(net.wait_height, top, WAIT_S, HONEST)
    await asyncio.to_thread(one_history, net, max(1, start), top)
    assert all(net.alive(i) for i in HONEST)
    return top


async def start_honest(net) -> None:
    for i in HONEST:
        net.start(i)
    await asyncio.to_thread(net.wait_ready, WAIT_S, HONEST)
    await asyncio.to_thread(net.wait_height, 1, WAIT_S, HONEST)


async def test_equivocating_proposer_and_voter_is_recorded_and_cannot_fork(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    genesis = network.genesis
    byzantine = ByzantineValidator(genesis, read_key_file(network.validator_key_files[BYZANTINE]))
    address = encode_address(byzantine.key.public_key)
    with running(network, start=False) as net:
        try:
            await start_honest(net)
            await byzantine.join()
            await asyncio.wait_for(byzantine.network.wait_for_peers(3), WAIT_S)
            start = min(await heights(net))

            # 1. Proposer equivocation: at the next height where validator 4
            # proposes in round 0, block A to validator 1, block B to 2 and 3,
            # then the other block to 1 and 2 as gossip would carry it.
            tip = max(await heights(net))
            height = next(h for h in range(tip + 2, tip + 10) if byzantine.is_proposer(h, 0))
            await asyncio.to_thread(net.wait_height, height - 1, WAIT_S, HONEST)
            parent = net.client(0).block(height - 1)
            block_a, block_b = byzantine.block(parent, 1), byzantine.block(parent, 2)
            proposal_a, proposal_b = byzantine.proposal(height, 0, block_a), byzantine.proposal(height, 0, block_b)
            byzantine.send(0, proposal_a)
            byzantine.send(1, proposal_b)
            byzantine.send(2, proposal_b)
            byzantine.send(0, proposal_b)
            byzantine.send(1, proposal_a)

            # 2. Vote equivocation for values nobody proposed (invalid blocks), at
            # the height being decided and the next one.
            now = max(await heights(net)) + 1
            for h in (now, now + 1):
                for kind in (MessageType.PREVOTE, MessageType.PRECOMMIT):
                    first, second = os.urandom(32), os.urandom(32)
                    for i in HONEST:
                        byzantine.send(i, byzantine.vote(kind, h, 0, first))
                        byzantine.send(i, byzantine.vote(kind, h, 0, second))

            # 3. Long-committed and far-future heights.
            for i in HONEST:
                byzantine.send(i, byzantine.vote(MessageType.PREVOTE, 1, 0, os.urandom(32)))
                byzantine.send(i, byzantine.vote(MessageType.PRECOMMIT, 1, 0, None))
                byzantine.send(i, byzantine.vote(MessageType.PREVOTE, now + 1_000_000, 0, os.urandom(32)))
                byzantine.send(i, byzantine.proposal(now + 1_000_000, 0, block_a))

            for i in HONEST:
                await poll(lambda i=i: any(e["validator"] == address for e in net.status(i)["evidence"]),
                           f"validator{i + 1} records evidence against validator 4")
                await poll(lambda i=i: metric(net.api_urls[i], "somnode_consensus_evidence_total") >= 1,
                           f"validator{i + 1} counts evidence")
            kinds = {e["type"] for i in HONEST for e in net.status(i)["evidence"]}
            assert {"proposal", "prevote", "precommit"} <= kinds, kinds
            assert all(e["validator"] == address for i in HONEST for e in net.status(i)["evidence"])

            top = await keeps_committing(net, start)
            committed = net.client(0).block(height)["hash"]
            print(f"byzantine messages sent={byzantine.sent} evidence kinds={sorted(kinds)} equivocated height "
                  f"{height} committed {committed[:16]} (A {block_hash(block_a).hex()[:16]}, "
                  f"B {block_hash(block_b).hex()[:16]}); one history over heights {start}..{top}")
        except BaseException:
            for i in HONEST:
                print(f"---- validator{i + 1} log tail ----\n{node_log(net, i)}")
            raise
        finally:
            await byzantine.stop()


async def closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the honest side closes ``ws``; its close code."""
    async with asyncio.timeout(WAIT_S):
        while not ws.closed:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    return ws.close_code


class Flood:
    """Sends one frame over and over; ``sent`` survives cancellation for the report."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> None:
        self.ws, self.frame, self.sent, self.cut_off = ws, frame, 0, False

    async def run(self, limit: int) -> None:
        """Send until the validator closes the link or ``limit`` frames went out.

        aiohttp keeps accepting writes after the far end has closed, so a
        reader watches for the close frame.
        """
        watcher = asyncio.create_task(self._watch())
        try:
            while self.sent < limit and not self.cut_off:
                await self.ws.send_bytes(self.frame)
                self.sent += 1
                if self.sent % 64 == 0:
                    await asyncio.sleep(0)
        except (ConnectionError, aiohttp.ClientError):
            self.cut_off = True
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            message = await self.ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                self.cut_off = True
                return


async def test_garbage_oversized_and_flooding_links_are_closed_and_counted(tmp_path):
    seed = int(os.environ.get("SOMNODE_FAULT_SEED", random.randrange(2**32)))
    print(f"garbage seed {seed}; replay with SOMNODE_FAULT_SEED={seed}")
    rng = random.Random(seed)
    network = make_network(tmp_path / "net", validators=4)
    byzantine = ByzantineValidator(network.genesis, read_key_file(network.validator_key_files[BYZANTINE]))
    with running(network, start=False) as net:
        try:
            await start_honest(net)
            start = min(await heights(net))
            target = net.api_urls[0]

            garbage = 0
            for _ in range(5):
                ws = await byzantine.raw_link(0)
                await ws.send_bytes(rng.randbytes(rng.randrange(1, 2048)))
                await closed(ws)
                garbage += 1
            await poll(lambda: metric(target, "somnode_p2p_bad_frames_total") >= garbage, "bad frames counted")

            ws = await byzantine.raw_link(0)
            # The validator may close as soon as the frame header announces the size.
            await Flood(ws, bytes(MAX_FRAME_BYTES + 1)).run(1)
            await closed(ws)
            await poll(lambda: metric(target, "somnode_p2p_oversized_frames_total") >= 1, "oversized frame counted")

            # Old-height votes: each is valid on the wire, so only the rate limit
            # stands between them and validator 1's event loop.  The flood runs
            # until the honest three have committed three more heights.
            ws = await byzantine.raw_link(0)
            flood = Flood(ws, encode(byzantine.vote(MessageType.PREVOTE, 1, 0, None)))
            flooding = asyncio.create_task(flood.run(FLOOD_FRAMES))
            try:
                top = await keeps_committing(net, start)
                await poll(lambda: metric(target, "somnode_p2p_throttled_total") >= 1, "flooder throttled")
                assert not flooding.done() or flood.cut_off, (
                    f"the flood ended after {flood.sent} frames, before the validators were tested under it")
            finally:
                flooding.cancel()
                await asyncio.gather(flooding, return_exceptions=True)
                await ws.close()
            throttled = metric(target, "somnode_p2p_throttled_total")
            disconnects = metric(target, "somnode_p2p_flood_disconnects_total")
            frames_in = metric(target, "somnode_p2p_frames_in_total")
            top = await keeps_committing(net, top)
            print(f"garbage frames={garbage} oversized=1 flood sent={flood.sent} throttled={throttled:g} "
                  f"flood_disconnects={disconnects:g} frames_in={frames_in:g}; one history over heights {start}..{top}")
        except BaseException:
            print(f"---- validator1 log tail ----\n{node_log(net, 0)}")
            raise
        finally:
            await byzantine.stop()


async def test_a_peer_flooding_at_full_speed_is_disconnected(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    byzantine = ByzantineValidator(network.genesis, read_key_file(network.validator_key_files[BYZANTINE]))
    with running(network, start=False) as net:
        try:
            await start_honest(net)
            ws = await byzantine.raw_link(0)
            flood = Flood(ws, encode(byzantine.vote(MessageType.PREVOTE, 1, 0, None)))
            # Burst plus strike allowance is 6,000 frames; three times that leaves no doubt.
            await flood.run(3 * FLOOD_ALLOWANCE)
            # The frames sit in socket buffers; the validator reads them at its rate and then hangs up.
            await closed(ws)
            print(f"flood sent={flood.sent} throttled={metric(net.api_urls[0], 'somnode_p2p_throttled_total'):g}")
            assert metric(net.api_urls[0], "somnode_p2p_flood_disconnects_total") >= 1
        finally:
            await byzantine.stop()
