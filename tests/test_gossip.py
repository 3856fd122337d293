"""Client transactions relayed to the other validators in batches: bounded in size and in delay."""

from __future__ import annotations

import asyncio

import pytest

from node.mempool.relay import TxGossip
from node.p2p.wire import TxBatch


def recorder() -> tuple[list[tuple[float, TxBatch]], callable]:
    sent: list[tuple[float, TxBatch]] = []
    return sent, lambda batch: sent.append((asyncio.get_running_loop().time(), batch))


async def test_small_requests_leave_together_after_the_delay():
    sent, broadcast = recorder()
    gossip = TxGossip(broadcast, delay_s=0.02, max_batch=100)
    started = asyncio.get_running_loop().time()
    for n in range(5):
        gossip.add([b"tx%d-a" % n, b"tx%d-b" % n])
        await asyncio.sleep(0)
    assert sent == []
    await asyncio.sleep(0.05)
    assert [batch.txs for _, batch in sent] == [tuple(b"tx%d-%s" % (n, s) for n in range(5) for s in (b"a", b"b"))]
    assert 0.015 <= sent[0][0] - started < 0.05
    gossip.add([])
    await asyncio.sleep(0.03)
    assert len(sent) == 1, "nothing to send, nothing sent"


async def test_a_full_batch_leaves_at_once_and_none_is_larger():
    sent, broadcast = recorder()
    gossip = TxGossip(broadcast, delay_s=10.0, max_batch=4)
    gossip.add([b"%d" % n for n in range(10)])
    assert [len(batch.txs) for _, batch in sent] == [4, 4]
    gossip.flush()
    assert [len(batch.txs) for _, batch in sent] == [4, 4, 2]
    assert [tx for _, batch in sent for tx in batch.txs] == [b"%d" % n for n in range(10)]


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"delay_s": -1}])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        TxGossip(lambda batch: None, **kwargs)
