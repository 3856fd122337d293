"""Backoff, the per-peer token bucket and the outbox that drops its oldest frame."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from node.p2p.backoff import Backoff
from node.p2p.handshake import Refusal, Role
from node.p2p.link import PeerLink
from node.p2p.ratelimit import BYTES_PER_TOKEN, TokenBucket, frame_cost
from node.p2p.stats import NetworkStats
from node.p2p.transport import keep_new_link
from node.p2p.wire import Status, encode


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_backoff_grows_to_its_ceiling_with_jitter_and_replays_from_the_seed(seed):
    delays = list(_delays(seed, 12))
    assert delays == _delays(seed, 12), f"seed={seed}"
    for attempt, delay in enumerate(delays):
        ceiling = min(2.0, 0.1 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling, f"seed={seed} attempt={attempt}"
    assert max(delays[6:]) > 1.0


def _delays(seed: int, n: int) -> list[float]:
    backoff = Backoff(0.1, 2.0, random.Random(seed))
    return [backoff.next_delay() for _ in range(n)]


def test_backoff_reset_starts_again_from_the_initial_delay():
    backoff = Backoff(0.1, 2.0, random.Random(7))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_admits_a_burst_then_throttles():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=5, max_strikes=3, clock=clock)
    assert all(bucket.admit().delay_s == 0 for _ in range(5))
    throttled = bucket.admit()
    assert throttled.delay_s == pytest.approx(0.1) and not throttled.flooding
    clock.now += 10
    assert bucket.admit().delay_s == 0  # refilled, capped at the burst


def test_bucket_calls_a_sustained_flood_flooding():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=2, max_strikes=3, clock=clock)
    verdicts = []
    for _ in range(10):
        verdict = bucket.admit()
        verdicts.append(verdict.flooding)
        clock.now += verdict.delay_s  # the link waits as told, but the peer keeps sending
    assert verdicts[:5] == [False] * 5
    assert verdicts[5] is True


def test_bucket_calls_a_flood_flooding_even_when_the_waits_overshoot():
    """The link's sleep overshoots the debt, so the bucket is briefly in credit between frames."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2000, burst=40, max_strikes=20, clock=clock)
    flooding_at = None
    for frame in range(500):
        verdict = bucket.admit()
        if verdict.flooding:
            flooding_at = frame
            break
        clock.now += verdict.delay_s * 3 + 0.0002
    assert flooding_at is not None


def test_bucket_forgives_a_peer_that_slows_down():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=1, max_strikes=2, clock=clock)
    for _ in range(50):
        verdict = bucket.admit()
        assert not verdict.flooding
        clock.now += 0.1


def test_bucket_forgives_bursts_separated_by_quiet():
    """An honest validator's bursts (a round's votes and proposal) never add up to a flood."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=4, max_strikes=2, clock=clock)
    for _ in range(20):
        verdicts = [bucket.admit() for _ in range(6)]
        assert not any(v.flooding for v in verdicts)
        clock.now += 1.0


class FakeSocket:
    """A websocket that records sent frames and closes when told."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self._closed = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive(self) -> aiohttp.WSMessage:
        await self._closed.wait()
        return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)

    async def close(self, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        self._closed.set()
        return True


def fake_link(outbox_size: int, outbox_bytes: int) -> tuple[PeerLink, FakeSocket, NetworkStats]:
    ws, stats = FakeSocket(), NetworkStats()
    link = PeerLink(ws, bytes(32), Role.INITIATOR, "test", outbox_size=outbox_size, outbox_bytes=outbox_bytes,
                    max_frame_bytes=outbox_bytes, bucket=TokenBucket(10, 10, 10, lambda: 0.0), stats=stats)
    return link, ws, stats


async def drain(link: PeerLink, ws: FakeSocket, expected: int) -> None:
    """Run the link until ``expected`` frames were written, then close it."""

    async def dispatch(link, message):
        raise AssertionError("nothing is received")

    runner = asyncio.create_task(link.run(dispatch))
    try:
        async with asyncio.timeout(5):
            while len(ws.sent) < expected:
                await asyncio.sleep(0.01)
    finally:
        await ws.close()
        await asyncio.wait_for(runner, 5)


async def test_full_outbox_drops_the_oldest_frames_and_counts_them():
    link, ws, stats = fake_link(outbox_size=3, outbox_bytes=1 << 20)
    frames = [encode(Status(h)) for h in range(8)]
    for frame in frames:
        assert link.enqueue(frame)
    assert stats.drops == 5
    await drain(link, ws, 3)
    assert ws.sent == frames[5:]
    assert stats.frames_out == 3
    assert not link.enqueue(frames[0])
    assert stats.drops == 6


async def test_outbox_is_bounded_in_bytes_too():
    link, ws, stats = fake_link(outbox_size=100, outbox_bytes=2500)
    frames = [bytes([i]) * 1000 for i in range(5)]
    for frame in frames:
        link.enqueue(frame)
    assert stats.drops == 3
    await drain(link, ws, 2)
    assert ws.sent == frames[3:]


async def test_superseding_link_inherits_unsent_frames_in_order():
    old, _, _ = fake_link(outbox_size=10, outbox_bytes=1 << 20)
    new, ws, _ = fake_link(outbox_size=10, outbox_bytes=1 << 20)
    old.enqueue(b"first")
    old.enqueue(b"second")
    new.enqueue(b"third")
    new.adopt(old.take_outbox())
    await drain(new, ws, 3)
    assert ws.sent == [b"first", b"second", b"third"]


LOW, HIGH = bytes(32), b"\xff" * 32


@pytest.mark.parametrize(
    ("local", "peer", "existing", "new", "keep_new"),
    [
        # Both dialled at once: the link initiated by the smaller key survives on both sides.
        (LOW, HIGH, Role.RESPONDER, Role.INITIATOR, True),
        (LOW, HIGH, Role.INITIATOR, Role.RESPONDER, False),
        (HIGH, LOW, Role.INITIATOR, Role.RESPONDER, True),
        (HIGH, LOW, Role.RESPONDER, Role.INITIATOR, False),
        # Same direction again: the newer link replaces a dead one.
        (LOW, HIGH, Role.INITIATOR, Role.INITIATOR, True),
        (HIGH, LOW, Role.RESPONDER, Role.RESPONDER, True),
    ],
)
def test_tie_break_keeps_the_same_link_on_both_sides(local, peer, existing, new, keep_new):
    assert keep_new_link(local, peer, existing, new) is keep_new
    mirrored = {Role.INITIATOR: Role.RESPONDER, Role.RESPONDER: Role.INITIATOR}
    if existing is not new:
        # The other side sees the same two links with the roles swapped and must agree.
        assert keep_new_link(peer, local, mirrored[new], mirrored[existing]) is not keep_new


def test_stats_snapshot_is_flat_and_names_every_refusal():
    stats = NetworkStats()
    stats.refuse(Refusal.BAD_SIGNATURE)
    stats.drops += 2
    snapshot = stats.snapshot()
    assert snapshot["refusals_bad_signature"] == 1
    assert snapshot["drops"] == 2
    assert all(f"refusals_{reason.value}" in snapshot for reason in Refusal)
    assert all(type(value) is int for value in snapshot.values())


def test_frame_cost_grows_with_size():
    assert frame_cost(0) == 1.0
    assert frame_cost(10 * BYTES_PER_TOKEN) == 11.0
