"""When a proposer answers RequestValue: a full block at once, a partial one after block_interval_s, and
on an idle network only for a transaction or the heartbeat (node/host/heartbeat.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from node.host.heartbeat import Heartbeat
from node.host.proposer import Proposer
from node.host.tip import Tip

HEIGHT = 7


class Pool:
    def __init__(self, count: int, size: int = 100) -> None:
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    @property
    def size_bytes(self) -> int:
        return self.count * self.size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ready_within(pool: Pool, clock: Clock, seconds: float, *, interval_s: float = 0.2,
                       empty_wait_s: float = 5.0, heartbeat_due: float | None = None) -> bool:
    """Whether the proposer says (HEIGHT, 0) is ready within ``seconds`` of real time; the last commit is now."""
    said: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
    proposer = Proposer(pool, "som-test", max_block_txs=100, max_block_bytes=100_000,  # type: ignore[arg-type]
                        empty_block_wait_s=empty_wait_s, block_interval_s=interval_s,
                        ready=lambda height, round: said.set_result((height, round)), clock=clock)
    proposer.schedule(HEIGHT, 0, clock(), heartbeat_due)
    try:
        assert await asyncio.wait_for(asyncio.shield(said), seconds) == (HEIGHT, 0)
        return True
    except TimeoutError:
        return False
    finally:
        await proposer.stop()


async def test_a_partial_block_waits_for_the_interval_after_the_last_commit():
    clock = Clock()
    task = asyncio.create_task(ready_within(Pool(10), clock, 30))
    await asyncio.sleep(0.1)
    assert not task.done(), "ready before block_interval_s had passed"
    clock.now += 0.2
    assert await task


async def test_a_full_block_goes_at_once():
    assert await ready_within(Pool(100), Clock(), 5)


async def test_a_block_full_by_bytes_goes_at_once():
    assert await ready_within(Pool(10, size=10_000), Clock(), 5)


async def test_with_no_interval_anything_pending_goes_at_once():
    assert await ready_within(Pool(1), Clock(), 5, interval_s=0)


async def test_an_empty_mempool_waits_for_the_empty_block_wait():
    clock = Clock()
    task = asyncio.create_task(ready_within(Pool(0), clock, 5, empty_wait_s=0.3))
    clock.now += 10  # the interval is long past: it is the empty mempool that waits
    await asyncio.sleep(0.1)
    assert not task.done(), "an empty block went before the empty block wait"
    assert await task


@pytest.mark.parametrize("pending", [0, 10])
async def test_the_empty_block_wait_bounds_every_wait(pending):
    assert await ready_within(Pool(pending), Clock(), 5, interval_s=60, empty_wait_s=0.05)


class Reaper(Pool):
    def reap(self, max_txs: int, max_bytes: int) -> list:
        return []


def test_a_block_is_never_older_than_its_parent():
    """A clock that went back still gives a block no older than its parent, on the tip it was given."""
    proposer = Proposer(Reaper(0), "som-test", max_block_txs=10, max_block_bytes=1000,  # type: ignore[arg-type]
                        empty_block_wait_s=0.1, block_interval_s=0.1, ready=lambda height, round: None)
    tip = Tip(6, b"h" * 32, 5_000, b"a" * 32, b"r" * 32, b"v" * 32, 0)
    _, block, _ = proposer.build(tip, b"k" * 32, now_ms=4_000)
    header = block.header
    assert (header.height, header.time_ms, header.previous_block_hash, header.previous_app_hash,
            header.previous_results_hash, header.next_validators_hash) == \
        (7, 5_000, b"h" * 32, b"a" * 32, b"r" * 32, b"v" * 32)
    _, later, _ = proposer.build(tip, b"k" * 32, now_ms=6_000)
    assert later.header.time_ms == 6_000


def tip(height: int, tx_count: int) -> Tip:
    return Tip(height, b"h" * 32, 5_000, b"a" * 32, b"r" * 32, b"v" * 32, tx_count)


def test_only_an_idle_first_round_after_an_empty_block_waits_for_the_heartbeat():
    heartbeat = Heartbeat(Pool(0), interval_s=30)
    assert heartbeat.due(tip(6, 0), 0, 100.0) == 130.0
    assert heartbeat.due(tip(6, 3), 0, 100.0) is None, "the block after one with transactions certifies them"
    assert heartbeat.due(tip(0, 0), 0, 100.0) is None, "a new network shows it is live"
    assert heartbeat.due(tip(6, 0), 1, 100.0) is None, "a later round means the first failed"
    assert Heartbeat(Pool(0), interval_s=0).due(tip(6, 0), 0, 100.0) is None, "0: no heartbeat"


async def test_an_idle_proposer_waits_for_the_heartbeat_and_then_proposes_at_once():
    clock = Clock()
    task = asyncio.create_task(ready_within(Pool(0), clock, 5, empty_wait_s=0.05, heartbeat_due=clock() + 30))
    await asyncio.sleep(0.2)
    assert not task.done(), "an empty block went before the heartbeat"
    clock.now += 30
    assert await task


async def test_a_transaction_ends_the_idle_wait():
    clock, pool = Clock(), Pool(0)
    task = asyncio.create_task(ready_within(pool, clock, 5, heartbeat_due=clock() + 30))
    await asyncio.sleep(0.2)
    assert not task.done()
    pool.count = 1
    clock.now += 0.2  # the block interval since the last commit has passed long ago on an idle network
    assert await task


async def test_the_wait_says_whether_a_transaction_came():
    clock, pool = Clock(), Pool(0)
    heartbeat = Heartbeat(pool, interval_s=30, clock=clock)
    clock.now += 31
    assert await heartbeat.wait(clock() - 1) is False
    pool.count = 2
    assert await heartbeat.wait(clock() + 30) is True


async def test_waits_of_a_decided_height_are_abandoned():
    said: list[tuple[int, int]] = []
    proposer = Proposer(Pool(0), "som-test", max_block_txs=100, max_block_bytes=100_000,  # type: ignore[arg-type]
                        empty_block_wait_s=0.05, block_interval_s=0.2,
                        ready=lambda height, round: said.append((height, round)))
    proposer.schedule(HEIGHT, 0, 0.0, heartbeat_due=time.monotonic() + 30)
    await asyncio.sleep(0.05)
    proposer.abandon()
    await asyncio.sleep(0.1)
    assert said == [] and not proposer._waiting, "the wait went without a word"
    await proposer.stop()
