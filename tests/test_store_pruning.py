"""Pruning a ledger store: old blocks go with everything stored per block, the state stays, the disk shrinks."""

from __future__ import annotations

import os
from pathlib import Path

import tests.crash_writer as cw
from node.ledger import LedgerStore
from node.ledger.pruning import HEIGHTS_PER_BATCH

HEIGHTS = 80
PADDING = os.urandom(64 * 1024)  # a block as large as one under load, so that its bytes dominate the disk


def build(path: Path) -> tuple[cw.ReferenceLedger, dict[int, list[bytes]]]:
    """A store of HEIGHTS blocks; the hashes of each block's transactions."""
    reference = cw.ReferenceLedger(cw.genesis_state())
    hashes: dict[int, list[bytes]] = {}
    with LedgerStore.open(path, cw.genesis_state()) as store:
        for _ in range(HEIGHTS):
            add_block(store, reference, hashes)
    return reference, hashes


def add_block(store: LedgerStore, reference: cw.ReferenceLedger, hashes: dict[int, list[bytes]]) -> None:
    height = store.height + 1
    txs = cw.make_block(7, height, reference.nonce)
    reference.apply(txs)
    store.apply_block(height, txs, cw.block_bytes(height, txs) + PADDING, cw.certificate_bytes(height))
    hashes[height] = [stx.hash for stx in txs]


def disk_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())


def test_pruning_deletes_old_blocks_with_their_records_keeps_the_state_and_gives_the_disk_back(tmp_path):
    path = tmp_path / "ledger"
    reference, hashes = build(path)
    genesis = cw.genesis_state()
    with LedgerStore.open(path, genesis, proof_heights=2) as store:
        before = disk_bytes(path)
        assert store.earliest_height == 1
        assert store.prune(61) == 60
        assert store.earliest_height == 61
        for height in range(1, 61):
            assert store.block(height) is None and store.certificate(height) is None
            assert store.receipts(height) is None
            assert all(store.tx_location(tx_hash) is None for tx_hash in hashes[height] if
                       not any(tx_hash in hashes[later] for later in range(61, HEIGHTS + 1)))
        for height in range(61, HEIGHTS + 1):
            assert store.block(height) is not None and store.certificate(height) is not None
            assert len(store.receipts(height) or ()) == len(hashes[height])
            located = [store.tx_location(tx_hash) for tx_hash in hashes[height]]
            assert all(location is not None and location.height >= height for location in located)
        assert store.app_hash == reference.app_hash, "the state is never pruned"
        # The kept versions' snapshots still see what was deleted; once later blocks have replaced
        # them, the next pass's compaction gives the space back.
        for _ in range(2):
            add_block(store, reference, hashes)
        assert store.prune(62) == 1
        after = disk_bytes(path)
        assert after < before * 0.4, f"{before} bytes on disk before pruning, {after} after"
    with LedgerStore.open(path, genesis) as store:
        assert store.earliest_height == 62, "the mark is durable"
        assert store.prune(40) == 0, "nothing below the mark is left"
        assert store.prune(10**6) == HEIGHTS + 2 - 62, "the committed block is never pruned"
        assert store.block(HEIGHTS + 2) is not None and store.height == HEIGHTS + 2


def test_readers_see_the_earliest_kept_height_move_with_each_batch(tmp_path):
    path = tmp_path / "ledger"
    build(path)
    with LedgerStore.open(path, cw.genesis_state()) as store:
        seen = []

        def between_batches() -> bool:
            earliest = store.earliest_height
            seen.append((earliest, store.block(earliest - 1), store.block(earliest) is not None))
            return False

        store.prune(70, stopping=between_batches)
        assert [earliest for earliest, _, _ in seen] == [17, 33, 49, 65, 70]
        assert all(below is None and kept for _, below, kept in seen), "the mark and the deletions move together"


def test_pruning_told_to_stop_leaves_a_whole_store_that_carries_on(tmp_path):
    path = tmp_path / "ledger"
    build(path)
    genesis = cw.genesis_state()
    with LedgerStore.open(path, genesis) as store:
        assert store.prune(70, stopping=lambda: True) == HEIGHTS_PER_BATCH, "one batch, then it stops"
        earliest = store.earliest_height
        assert store.block(earliest - 1) is None and store.block(earliest) is not None
    with LedgerStore.open(path, genesis) as store:
        assert store.earliest_height == earliest
        assert store.prune(70) == 70 - earliest
        assert store.block(69) is None and store.block(70) is not None
