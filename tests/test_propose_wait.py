"""When a proposer answers RequestValue: a full block at once, a partial one after block_interval_s."""

from __future__ import annotations

import asyncio

import pytest

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
                       empty_wait_s: float = 5.0) -> bool:
    """Whether the proposer says (HEIGHT, 0) is ready within ``seconds`` of real time; the last commit is now."""
    said: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
    proposer = Proposer(pool, "som-test", max_block_txs=100, max_block_bytes=100_000,  # type: ignore[arg-type]
                        empty_block_wait_s=empty_wait_s, block_interval_s=interval_s,
                        ready=lambda height, round: said.set_result((height, round)), clock=clock)
    proposer.schedule(HEIGHT, 0, clock())
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
    tip = Tip(6, b"h" * 32, 5_000, b"a" * 32, b"r" * 32, b"v" * 32)
    _, block, _ = proposer.build(tip, b"k" * 32, now_ms=4_000)
    header = block.header
    assert (header.height, header.time_ms, header.previous_block_hash, header.previous_app_hash,
            header.previous_results_hash, header.next_validators_hash) == \
        (7, 5_000, b"h" * 32, b"a" * 32, b"r" * 32, b"v" * 32)
    _, later, _ = proposer.build(tip, b"k" * 32, now_ms=6_000)
    assert later.header.time_ms == 6_000
