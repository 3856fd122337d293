"""Readers on other threads (the API, the mempool) while a worker thread commits blocks.

The node commits in a worker thread (``asyncio.to_thread``) while the event
loop keeps answering balance queries, so a read must never leave a stale
value in the account cache, which would silently fork this validator's state.
"""

from __future__ import annotations

import sys
import threading

import tests.crash_writer as cw
from node.ledger import LedgerStore


def test_concurrent_reads_never_leave_stale_accounts_in_the_cache(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    everyone = (cw.ISSUER, *cw.BANKS, *cw.HOLDERS)
    stop = threading.Event()
    reads = [0]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to widen every race window

    with LedgerStore.open(tmp_path / "l", genesis, cache_accounts=4) as store:
        def reader() -> None:
            while not stop.is_set():
                for pk in everyone:
                    store.account(pk)
                    assert store.height >= 0
                    reads[0] += 1

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            for height in range(1, 151):
                txs = cw.make_block(9, height, reference.nonce)
                reference.apply(txs)
                store.apply_block(height, txs, b"b", b"c")
                for pk in everyone:  # what the node would execute the next block against
                    expected = reference.record(pk)
                    assert store.account(pk) == expected, f"stale account at height {height}"
        finally:
            stop.set()
            thread.join(timeout=30)
            sys.setswitchinterval(old_interval)
        assert reads[0] > 0
        assert store.app_hash == reference.app_hash
