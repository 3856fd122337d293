"""When a proposer answers RequestValue: a full block at once, a partial one after block_interval_s."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from consensus.events import ValueReady
from node.host.driver import ConsensusDriver

HEIGHT = 7


class Pool:
    def __init__(self, count: int, size: int = 100) -> None:
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    @property
    def size_bytes(self) -> int:
        return self.count * self.size

    def reap(self, max_txs: int, max_bytes: int) -> list:
        return [object()] * min(self.count, max_txs)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def driver(pool: Pool, clock: Clock, *, interval_s: float = 0.2, empty_wait_s: float = 5.0) -> ConsensusDriver:
    store = SimpleNamespace(chain_id="som-test", height=HEIGHT - 1)
    chain = SimpleNamespace(store=store, build=lambda height, proposer, now_ms, txs: b"block of %d" % len(txs))
    engine = SimpleNamespace(height=HEIGHT, round=0)
    return ConsensusDriver(
        engine=engine, chain=chain, mempool=pool, network=None, verifier=None, signing_file=None,
        validators=None, own_key=b"k" * 32, encode_certificate=None, max_block_txs=100,
        max_block_bytes=100_000, empty_block_wait_s=empty_wait_s, block_interval_s=interval_s, clock=clock)


async def proposed_within(d: ConsensusDriver, seconds: float) -> bytes | None:
    """Run the proposer for up to ``seconds`` of real time; the value it proposed, if any."""
    task = asyncio.create_task(d._propose_when_ready(HEIGHT, 0))
    try:
        await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        return None
    event = d._queue.get_nowait()
    assert isinstance(event, ValueReady) and (event.height, event.round) == (HEIGHT, 0)
    return event.value


async def test_a_partial_block_waits_for_the_interval_after_the_last_commit():
    clock = Clock()
    d = driver(Pool(10), clock)  # the driver counts its last commit from now
    task = asyncio.create_task(proposed_within(d, 30))
    await asyncio.sleep(0.1)
    assert not task.done(), "proposed before block_interval_s had passed"
    clock.now += 0.2
    assert await task == b"block of 10"


async def test_a_full_block_goes_at_once():
    assert await proposed_within(driver(Pool(100), Clock()), 5) == b"block of 100"


async def test_a_block_full_by_bytes_goes_at_once():
    assert await proposed_within(driver(Pool(10, size=10_000), Clock()), 5) == b"block of 10"


async def test_with_no_interval_anything_pending_goes_at_once():
    assert await proposed_within(driver(Pool(1), Clock(), interval_s=0), 5) == b"block of 1"


async def test_an_empty_mempool_gives_an_empty_block_after_the_empty_block_wait():
    clock = Clock()
    d = driver(Pool(0), clock, empty_wait_s=0.05)
    clock.now += 10  # the interval is long past: it is the empty mempool that waits
    assert await proposed_within(d, 5) == b"block of 0"


@pytest.mark.parametrize("pending", [0, 10])
async def test_the_empty_block_wait_bounds_every_wait(pending):
    assert await proposed_within(driver(Pool(pending), Clock(), interval_s=60, empty_wait_s=0.05), 5) \
        == b"block of %d" % pending
