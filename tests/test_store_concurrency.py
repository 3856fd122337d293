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


def test_proofs_read_on_another_thread_always_verify_against_their_height(tmp_path):
    """Only the newest version of the state tree is held whole and a commit changes it in place, so a
    prover on another thread must still see each kept height whole: never a block half installed."""
    from node.core.state_proof import verify
    from node.ledger import layout as k
    from node.ledger.errors import LedgerHeightError

    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    keys = [k.account_key(pk) for pk in (cw.ISSUER, *cw.BANKS, *cw.HOLDERS)] + [k.account_key(cw.key(999))]
    roots: dict[int, bytes] = {0: reference.app_hash}
    stop = threading.Event()
    proven, failures = [0], []
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    with LedgerStore.open(tmp_path / "l", genesis, proof_heights=4) as store:
        def prover() -> None:
            while not stop.is_set():
                low, high = store.provable_heights()
                for height in range(low, high + 1):
                    for key in keys:
                        try:
                            value, proof, root = store.state_proof(key, height)
                        except LedgerHeightError:
                            continue  # the window moved on meanwhile
                        try:
                            assert root == roots[height]
                            verify(root, key, value, proof)
                        except Exception as exc:  # noqa: BLE001 - reported to the main thread
                            failures.append(f"height {height}: {exc!r}")
                        proven[0] += 1

        thread = threading.Thread(target=prover, daemon=True)
        thread.start()
        try:
            for height in range(1, 81):
                txs = cw.make_block(9, height, reference.nonce)
                reference.apply(txs)
                roots[height] = reference.app_hash  # before the commit: the prover may see it at once
                store.apply_block(height, txs, b"b", b"c")
                assert store.app_hash == roots[height]
        finally:
            stop.set()
            thread.join(timeout=30)
            sys.setswitchinterval(old_interval)
        assert not failures, failures[:3]
        assert proven[0] > 0
