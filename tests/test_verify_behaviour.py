"""The verifier's cache, coalescing, concurrency and lifecycle.

Where a test needs a worker to be busy, it holds libsodium's call on an event
instead of relying on how long verification takes, so the outcome is decided
by ordering, never by timing.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import pytest

import node.verifier.scheduler
from node.core.keys import KeyPair, verify_signature
from node.verifier.cache import VerifiedSignatureCache, signature_digest
from node.verifier.scheduler import BATCH_SIZE_BOUNDS, CHUNKS_PER_THREAD, URGENT_THREAD_MAX, BatchVerifier
from tests.conftest import running_verifier

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
HOLD = b"hold the worker"


def triple(i: int, valid: bool = True) -> tuple[bytes, bytes, bytes]:
    key = KEYS[i % len(KEYS)]
    message = f"transfer #{i}".encode()
    signature = key.sign(message if valid else message + b"!")
    return key.public_key, message, signature


@pytest.fixture
def verifier() -> Iterator[BatchVerifier]:
    yield from running_verifier(threads=2, chunk_size=16, max_wait_ms=1.0)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """While unset, a worker that reaches a message containing HOLD waits for it."""
    released = threading.Event()
    real = node.verifier.scheduler.crypto_sign_open

    def held(signed: bytes, public_key: bytes) -> bytes:
        if HOLD in signed:
            assert released.wait(timeout=30), "a test forgot to release the held worker"
        return real(signed, public_key)

    monkeypatch.setattr(node.verifier.scheduler, "crypto_sign_open", held)
    try:
        yield released
    finally:
        released.set()


def held_triple() -> tuple[bytes, bytes, bytes]:
    return KEYS[0].public_key, HOLD, KEYS[0].sign(HOLD)


# ---------------------------------------------------------------- the cache

def test_a_valid_triple_is_verified_once_and_then_answered_from_the_cache(verifier):
    item = triple(1)
    assert not verifier.is_known_valid(*item)
    assert verifier.verify(*item)
    assert verifier.is_known_valid(*item)
    before = verifier.stats
    assert verifier.verify_many([item] * 5) == [True] * 5
    assert asyncio.run(verifier.verify_batch([item])) == [True]
    after = verifier.stats
    assert after.verified == before.verified, "a cached triple is never verified again"
    assert after.cache_hits == before.cache_hits + 6


def test_an_invalid_triple_is_never_cached(verifier):
    bad = triple(2, valid=False)
    for _ in range(3):
        assert verifier.verify_many([bad]) == [False]
        assert asyncio.run(verifier.verify_batch([bad])) == [False]
        assert not verifier.is_known_valid(*bad)
    stats = verifier.stats
    assert stats.cache_entries == 0
    assert stats.cache_hits == 0
    assert stats.verified == 6 and stats.valid == 0


def test_caller_keys_replace_the_digest_as_the_cache_key(verifier):
    item, other = triple(4), triple(5)
    key = b"k" * 32
    assert asyncio.run(verifier.verify_batch([item], keys=[key])) == [True]
    assert not verifier.is_known_valid(*item), "cached under the caller's key, not the triple's digest"
    before = verifier.stats
    assert verifier.verify_many([item], keys=[key]) == [True]
    assert verifier.stats.cache_hits == before.cache_hits + 1 and verifier.stats.verified == before.verified
    # The cache trusts the key: whatever triple comes with a remembered key is answered from it.
    assert verifier.verify_many([other], keys=[key]) == [True]
    assert verifier.verify_many([other]) == [True] and verifier.stats.verified == before.verified + 1


def test_caller_keys_mark_only_what_verified(verifier):
    bad = triple(6, valid=False)
    key, message, signature = triple(7)
    assert verifier.verify_many([bad, (key[:31], message, signature)], keys=[b"a" * 32, b"b" * 32]) == [False, False]
    assert verifier.stats.cache_entries == 0
    with pytest.raises(ValueError, match="2 cache keys for 1 triples"):
        verifier.verify_many([bad], keys=[b"a" * 32, b"b" * 32])
    with pytest.raises(ValueError, match="0 cache keys for 1 triples"):
        asyncio.run(verifier.verify_batch([bad], keys=[]))


def test_malformed_triples_never_reach_libsodium(verifier):
    key, message, signature = triple(3)
    assert verifier.verify_many([(key[:31], message, signature), (key, message, signature[:10])]) == [False, False]
    stats = verifier.stats
    assert stats.malformed == 2 and stats.verified == 0 and stats.cache_entries == 0


def test_the_cache_bound_holds_and_evicts_the_least_recently_used():
    with BatchVerifier(threads=1, cache_size=4) as v:
        items = [triple(i) for i in range(12)]
        assert v.verify_many(items[:4]) == [True] * 4
        assert v.is_known_valid(*items[0])  # touch: items[0] is now the most recent
        for item in items[4:7]:
            assert v.verify(*item)
            assert v.stats.cache_entries <= 4
        assert v.is_known_valid(*items[0])
        assert not any(v.is_known_valid(*item) for item in items[1:4])
        assert all(v.is_known_valid(*item) for item in items[4:7])
        assert v.verify_many(items) == [True] * 12
        assert v.stats.cache_entries == 4


def test_a_zero_sized_cache_remembers_nothing():
    with BatchVerifier(threads=1, cache_size=0) as v:
        item = triple(5)
        assert v.verify_many([item, item]) == [True, True]
        assert not v.is_known_valid(*item)
        assert v.stats.cache_entries == 0 and v.stats.cache_hits == 0


def test_cache_digest_covers_key_signature_and_message():
    key, message, signature = triple(6)
    base = signature_digest(key, signature + message)
    assert signature_digest(key, signature + message + b"\x00") != base
    assert signature_digest(KEYS[7].public_key, signature + message) != base
    assert signature_digest(key, signature[:-1] + bytes([signature[-1] ^ 1]) + message) != base
    cache = VerifiedSignatureCache(2)
    cache.add_many([b"a", b"b", b"c"])
    assert len(cache) == 2 and cache.contains_many([b"a", b"b", b"c"]) == [False, True, True]
    with pytest.raises(ValueError):
        VerifiedSignatureCache(-1)


# ------------------------------------------------------------- concurrency

async def test_many_concurrent_callers_each_get_their_own_answers_in_order(verifier):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    requests = []
    for _r in range(200):
        size = rng.choice([0, 1, 1, 2, 3, 7, 16, 40])
        requests.append([triple(rng.randrange(10_000), valid=rng.random() < 0.7) for _ in range(size)])
    answers = await asyncio.gather(*(verifier.verify_batch(items) for items in requests))
    for items, answer in zip(requests, answers, strict=True):
        assert answer == [verify_signature(*item) for item in items], f"replay with seed={seed}"


async def test_threads_and_the_event_loop_share_one_verifier(verifier):
    items = [triple(i, valid=i % 3 != 0) for i in range(60)]
    expected = [i % 3 != 0 for i in range(60)]
    loop = asyncio.get_running_loop()
    from_threads = [loop.run_in_executor(None, verifier.verify_many, items[i::3]) for i in range(3)]
    from_loop = [verifier.verify_batch(items[i:i + 5]) for i in range(0, 60, 5)]
    threaded = await asyncio.gather(*from_threads)
    batched = await asyncio.gather(*from_loop)
    for i in range(3):
        assert threaded[i] == expected[i::3]
    assert [ok for answer in batched for ok in answer] == expected


async def test_small_requests_arriving_while_the_workers_are_busy_share_chunks():
    async with BatchVerifier(threads=1, chunk_size=256, max_wait_ms=1000.0) as v:
        items = [triple(i) for i in range(100)]
        answers = await asyncio.gather(*(v.verify_batch([item]) for item in items))
        assert [a[0] for a in answers] == [True] * 100
        stats = v.stats
        assert stats.requests == 100
        # The first request found the worker free and went alone; the other
        # 99 queued behind it and left together when it finished.
        assert stats.batches == 2, stats


async def test_a_full_chunk_leaves_at_once_while_the_pool_has_room(gate):
    async with BatchVerifier(threads=1, chunk_size=4, max_wait_ms=60_000.0) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        assert v.stats.chunks_in_flight == 1
        waiting = [asyncio.ensure_future(v.verify_batch([triple(i)])) for i in range(9)]
        await asyncio.sleep(0.01)
        stats = v.stats
        assert stats.chunks_in_flight == CHUNKS_PER_THREAD == 2, "one full chunk joined the held one"
        assert stats.queued == 5, "the second full chunk waits for room, the last item for company"
        gate.set()
        assert await held == [True]
        assert [a[0] for a in await asyncio.gather(*waiting)] == [True] * 9


async def test_the_pool_never_holds_more_than_its_share_of_chunks():
    """A flood waits in the verifier's queue, where urgent work can overtake it, not in the pool's."""
    async with BatchVerifier(threads=2, chunk_size=8, max_wait_ms=0.5) as v:
        most = 0
        requests = [asyncio.ensure_future(v.verify_batch([triple(i + 40 * n) for i in range(40)]))
                    for n in range(30)]
        while not all(r.done() for r in requests):
            most = max(most, v.stats.chunks_in_flight)
            await asyncio.sleep(0)
        assert all(all(answer) for answer in await asyncio.gather(*requests))
        # Pieces spread over both threads can add one chunk per thread to the share.
        assert 2 <= most <= (CHUNKS_PER_THREAD + 1) * 2


async def test_urgent_work_overtakes_the_queue_and_the_back_pressure(gate):
    async with BatchVerifier(threads=1, chunk_size=4, max_wait_ms=60_000.0, max_pending=6) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(v.verify_batch([triple(i)])) for i in range(5)]
        await asyncio.sleep(0.01)
        blocked = asyncio.ensure_future(v.verify_batch([triple(9), triple(10)]))
        await asyncio.sleep(0.01)
        assert v.stats.waiting_requests == 1, "the back-pressure limit holds ordinary callers"
        urgent_items = [triple(20 + i, valid=i != 1) for i in range(URGENT_THREAD_MAX + 1)]
        urgent = asyncio.ensure_future(v.verify_batch(urgent_items, urgent=True))
        await asyncio.sleep(0.01)
        assert v.stats.chunks_in_flight >= 3, "urgent work went to the pool at once"
        order: list[str] = []
        for name, request in [("urgent", urgent), ("last queued", queued[4]), ("blocked", blocked)]:
            request.add_done_callback(lambda _, name=name: order.append(name))
        gate.set()
        assert await urgent == [i != 1 for i in range(URGENT_THREAD_MAX + 1)]
        assert [a[0] for a in await asyncio.gather(*queued)] == [True] * 5
        assert await blocked == [True, True] and await held == [True]
        assert order == ["urgent", "last queued", "blocked"]
        assert v.stats.backlog == 0


async def test_a_consensus_message_is_checked_while_the_pool_is_busy(gate):
    """A vote's one signature must not wait for the admission chunks running in the pool."""
    async with BatchVerifier(threads=1, chunk_size=4, max_wait_ms=1.0) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0.01)
        assert v.stats.chunks_in_flight == 1, "the only pool thread is busy"
        assert await asyncio.wait_for(v.verify_batch([triple(1), triple(2, valid=False)], urgent=True), 5) \
            == [True, False]
        assert not held.done()
        gate.set()
        assert await held == [True]


async def test_a_queued_request_waits_at_most_max_wait_ms(gate):
    async with BatchVerifier(threads=1, chunk_size=256, max_wait_ms=1.0) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        queued = asyncio.ensure_future(v.verify_batch([triple(1), triple(2)]))
        await asyncio.sleep(0)
        assert v.stats.queued == 2
        # This sleep's timer expires after the verifier's 1 ms one, so the
        # queue has been flushed to the (still busy) pool by the time it returns.
        await asyncio.sleep(0.05)
        stats = v.stats
        assert stats.queued == 0 and stats.chunks_in_flight == 2
        gate.set()
        assert await held == [True]
        assert await queued == [True, True]


async def test_a_cancelled_caller_does_not_disturb_the_others(gate):
    async with BatchVerifier(threads=1, chunk_size=256, max_wait_ms=1.0) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(v.verify_batch([triple(1)]))
        kept = asyncio.ensure_future(v.verify_batch([triple(2), triple(3, valid=False)]))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        assert await held == [True]
        assert await kept == [True, False]
        with pytest.raises(asyncio.CancelledError):
            await doomed


async def test_back_pressure_holds_callers_beyond_max_pending_in_arrival_order(gate):
    async with BatchVerifier(threads=1, chunk_size=256, max_wait_ms=1.0, max_pending=4) as v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        fits = asyncio.ensure_future(v.verify_batch([triple(1), triple(2), triple(3, valid=False)]))
        await asyncio.sleep(0)
        assert v.stats.backlog == 4
        blocked = asyncio.ensure_future(v.verify_batch([triple(4), triple(5)]))
        gives_up = asyncio.ensure_future(v.verify_batch([triple(6)]))
        behind = asyncio.ensure_future(v.verify_batch([triple(7, valid=False)]))
        await asyncio.sleep(0.01)
        stats = v.stats
        assert stats.backlog == 4 and stats.waiting_requests == 3, "the full backlog admits no one"
        gives_up.cancel()
        gate.set()
        assert await held == [True]
        assert await fits == [True, True, False]
        assert await blocked == [True, True]
        assert await behind == [False]
        with pytest.raises(asyncio.CancelledError):
            await gives_up
        stats = v.stats
        assert stats.backlog == 0 and stats.waiting_requests == 0


async def test_a_request_larger_than_max_pending_still_gets_through():
    async with BatchVerifier(threads=2, chunk_size=4, max_pending=3) as v:
        items = [triple(i, valid=i != 5) for i in range(10)]
        first, second = await asyncio.gather(v.verify_batch(items), v.verify_batch(items[::-1]))
        assert first == [i != 5 for i in range(10)]
        assert second == first[::-1]
        assert v.stats.backlog == 0


# -------------------------------------------------------- lifecycle, stats

async def test_leaving_the_async_context_answers_everything_queued(gate):
    v = BatchVerifier(threads=1, chunk_size=256, max_wait_ms=60_000.0)
    async with v:
        held = asyncio.ensure_future(v.verify_batch([held_triple()]))
        await asyncio.sleep(0)
        queued = asyncio.ensure_future(v.verify_batch([triple(4)]))
        await asyncio.sleep(0)
        assert v.stats.queued == 1
        gate.set()
    assert await held == [True] and await queued == [True]
    with pytest.raises(RuntimeError):
        await v.verify_batch([triple(5)])


def test_a_closed_verifier_refuses_work():
    v = BatchVerifier(threads=1)
    v.close()
    v.close()
    with pytest.raises(RuntimeError):
        v.verify_many([triple(1)])
    with pytest.raises(RuntimeError):
        v.verify(*triple(1))


@pytest.mark.parametrize("kwargs", [
    {"threads": 0}, {"chunk_size": 0}, {"max_wait_ms": -1.0}, {"max_wait_ms": float("nan")},
    {"cache_size": -5}, {"max_pending": 0},
])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        BatchVerifier(**kwargs)


def test_stats_account_for_every_signature():
    with BatchVerifier(threads=2, chunk_size=10) as v:
        items = [triple(i, valid=i % 4 != 0) for i in range(50)]
        malformed = [(b"short", b"m", b"s")] * 3
        v.verify_many(items + malformed)
        v.verify_many(items[:20])
        stats = v.stats
        assert stats.signatures == 73
        # The second call finds the 15 valid ones cached and re-checks the 5 invalid ones.
        assert stats.verified == 55 and stats.valid == 37
        assert stats.cache_hits == 15 and stats.malformed == 3
        assert stats.batches == 6 and stats.last_batch_size == 5
        assert dict(stats.batch_size_le)[4] == 0 and dict(stats.batch_size_le)[16] == 6
        assert stats.batch_size_le[-1] == (BATCH_SIZE_BOUNDS[-1], 6)
        assert stats.batch_seconds_total > 0


@pytest.mark.parametrize(("count", "chunk_size", "pieces"), [
    (1, 256, [1]), (12, 256, [12]), (16, 256, [8, 8]), (300, 256, [150, 150]), (301, 100, [76, 75, 75, 75]),
])
def test_a_batch_is_cut_into_even_pieces_over_the_threads(count, chunk_size, pieces):
    with BatchVerifier(threads=2, chunk_size=chunk_size) as v:
        assert v.verify_many([triple(i) for i in range(count)]) == [True] * count
        stats = v.stats
        assert stats.batches == len(pieces)
        counts = dict(stats.batch_size_le)
        for bound in (1, 4, 16, 64, 256):
            assert counts[bound] == sum(1 for p in pieces if p <= bound)
