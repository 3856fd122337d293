"""State sync against peers in memory: a real ledger's chain and snapshot, honest and lying peers.

A source ledger commits twelve chained blocks and snapshots height 8.  A new
ledger restores from the peers, trusting only block 12's hash: a peer whose
chunks are corrupted, one offering a forged manifest and one whose blocks do
not lead to the trusted block are each refused and recorded, the restore
ends at the source's app hash of height 8, and the restored ledger then
applies blocks 9..12 to the source's app hash of height 12.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil

import pytest

from consensus.certificate import CommitCertificate
from node.core.block import Block, block_hash, build_block, decode_block
from node.ledger.restore import LedgerRestore
from node.ledger.store import LedgerStore
from node.p2p.handshake import Role
from node.p2p.requests import LinkLost
from node.p2p.transport import PeerInfo
from node.statesync.files import SnapshotFiles
from node.statesync.snapshot import Manifest, SnapshotError
from node.statesync.sync import PARALLEL_CHUNKS, StateSync, StateSyncError, Trust
from tests.crash_writer import CHAIN_ID, genesis_state, make_block

SNAPSHOT_HEIGHT, TOP = 8, 12
HONEST, CORRUPT, FORGER, FORKED, WITHHOLDER, SECOND = (bytes([n]) * 32 for n in range(1, 7))


class Chain:
    """Blocks 1..TOP committed to a source ledger, each naming the one before it."""

    def __init__(self, tmp_path) -> None:
        self.genesis = genesis_state()
        self.blocks: dict[int, bytes] = {}
        self.txs: dict[int, list] = {}
        self.app_hashes: dict[int, bytes] = {}
        self.files = SnapshotFiles(tmp_path / "snapshots", 2)
        with LedgerStore.open(tmp_path / "source", self.genesis) as store:
            previous = store.genesis_hash
            for height in range(1, TOP + 1):
                txs = make_block(11, height, lambda pk, store=store: (store.account(pk) or (0, 0))[1])
                raw = block_bytes(height, txs, previous, store.app_hash, store.results_hash)
                store.apply_block(height, txs, raw, b"certificate")
                self.blocks[height], self.txs[height] = raw, txs
                self.app_hashes[height] = store.app_hash
                previous = block_hash(raw)
                if height == SNAPSHOT_HEIGHT:
                    export = store.state_export()
                    self.files.write(export.height, export.app_hash, export.records(), export.tx_count,
                                     export.history_count)
                    self.accounts = dict(store.iter_accounts())


def block_bytes(height: int, txs: list, previous: bytes, app_hash: bytes, results_hash: bytes) -> bytes:
    return build_block(chain_id=CHAIN_ID, height=height, time_ms=1_000 * height, proposer=HONEST,
                       previous_block_hash=previous, previous_app_hash=app_hash,
                       previous_results_hash=results_hash, next_validators_hash=bytes(32),
                       txs=[stx.raw for stx in txs]).encode()


class Peers:
    """Peers answering from the chain: CORRUPT flips a byte of every chunk, FORGER offers its own manifest,
    FORKED serves a block 9 of another header, WITHHOLDER offers the snapshot with counters of its own and
    serves none of it."""

    def __init__(self, chain: Chain, keys: tuple[bytes, ...]) -> None:
        self.chain, self.keys = chain, keys
        self.chunks_served: dict[bytes, int] = dict.fromkeys(keys, 0)

    def peers(self) -> tuple[PeerInfo, ...]:
        return tuple(PeerInfo(key, Role.INITIATOR, "test", TOP, 1) for key in self.keys)

    async def request_blocks(self, peer, from_height, to_height):
        blocks = []
        for height in range(from_height, min(to_height, TOP) + 1):
            raw = self.chain.blocks[height]
            if peer == FORKED and height == 9:
                block = decode_block(raw)
                raw = Block(dataclasses.replace(block.header, time_ms=block.header.time_ms + 1), block.txs).encode()
            blocks.append((raw, CommitCertificate(height, 0, block_hash(raw), ())))
        return tuple(blocks)

    async def request_snapshots(self, peer):
        manifests = self.chain.files.manifests()
        honest = Manifest.decode(manifests[0])
        if peer == FORGER:
            hashes = (hashlib.sha256(b"forged").digest(), *honest.chunk_hashes[1:])
            return (Manifest(honest.height, honest.app_hash, hashes, honest.chunk_records, 0, 0).encode(),)
        if peer == WITHHOLDER:  # the certified chunks, counters of its own, and then no chunk at all
            return (dataclasses.replace(honest, tx_count=10**18, history_count=10**18).encode(),)
        return manifests

    async def request_chunk(self, peer, height, index):
        if peer not in self.keys:
            raise LinkLost("not linked")
        self.chunks_served[peer] += 1
        chunk = self.chain.files.chunk(height, index)
        if peer == WITHHOLDER:
            return None
        if peer == CORRUPT and chunk is not None:
            chunk = chunk[:-1] + bytes([chunk[-1] ^ 0x40])
        return chunk


def restore_into(path, genesis):
    def fresh() -> LedgerRestore:
        shutil.rmtree(path, ignore_errors=True)
        return LedgerRestore(path, genesis)
    return fresh


def test_a_ledger_restored_from_honest_and_lying_peers_continues_the_chain(tmp_path):
    chain = Chain(tmp_path)
    peers = Peers(chain, (CORRUPT, FORGER, HONEST))
    trust = Trust(TOP, block_hash(chain.blocks[TOP]))
    sync = StateSync(peers, CHAIN_ID, trust, restore_into(tmp_path / "restored", chain.genesis))
    assert asyncio.run(sync.run()) == SNAPSHOT_HEIGHT
    assert set(sync.refused) == {CORRUPT, FORGER}
    assert "does not verify" in sync.refused[CORRUPT] and "manifest" in sync.refused[FORGER]
    # Only the requests already in flight when it was refused; never one after.
    assert peers.chunks_served[CORRUPT] <= PARALLEL_CHUNKS < peers.chunks_served[HONEST]

    with LedgerStore.open(tmp_path / "restored", chain.genesis) as store:
        assert (store.height, store.app_hash) == (SNAPSHOT_HEIGHT, chain.app_hashes[SNAPSHOT_HEIGHT])
        assert store.earliest_height == SNAPSHOT_HEIGHT + 1
        assert dict(store.iter_accounts()) == chain.accounts
        for height in range(SNAPSHOT_HEIGHT + 1, TOP + 1):
            store.apply_block(height, chain.txs[height], chain.blocks[height], b"certificate")
            assert store.app_hash == chain.app_hashes[height]


def test_blocks_that_do_not_lead_to_the_trusted_hash_are_refused(tmp_path):
    chain = Chain(tmp_path)
    sync = StateSync(Peers(chain, (FORKED,)), CHAIN_ID, Trust(TOP, block_hash(chain.blocks[TOP])),
                     restore_into(tmp_path / "restored", chain.genesis))
    with pytest.raises(StateSyncError, match="no linked peer keeps blocks"):
        asyncio.run(sync._attempt())
    assert "do not lead to the trusted block" in sync.refused[FORKED]
    assert not (tmp_path / "restored").exists(), "nothing is written before the manifest is certified"


def test_a_trusted_hash_no_peer_can_lead_to_restores_nothing(tmp_path):
    chain = Chain(tmp_path)
    sync = StateSync(Peers(chain, (HONEST,)), CHAIN_ID, Trust(TOP, hashlib.sha256(b"elsewhere").digest()),
                     restore_into(tmp_path / "restored", chain.genesis))
    with pytest.raises(StateSyncError):
        asyncio.run(sync._attempt())
    assert HONEST in sync.refused and not (tmp_path / "restored").exists()


def test_a_peer_withholding_its_snapshot_neither_stalls_the_sync_nor_sets_the_counters(tmp_path):
    chain = Chain(tmp_path)
    peers = Peers(chain, (WITHHOLDER, HONEST, SECOND))
    sync = StateSync(peers, CHAIN_ID, Trust(TOP, block_hash(chain.blocks[TOP])),
                     restore_into(tmp_path / "restored", chain.genesis))
    assert asyncio.run(asyncio.wait_for(sync.run(), 30)) == SNAPSHOT_HEIGHT
    assert peers.chunks_served[WITHHOLDER] <= PARALLEL_CHUNKS, "asked again after it served nothing"
    expected = Manifest.decode(chain.files.manifests()[0])
    with LedgerStore.open(tmp_path / "restored", chain.genesis) as store:
        assert store.app_hash == chain.app_hashes[SNAPSHOT_HEIGHT]
        assert store.committed_txs == expected.tx_count
        assert store.governance_history_size == expected.history_count


def test_a_manifest_with_counters_beyond_any_chain_is_malformed():
    honest = Manifest(8, bytes(32), (bytes(32),) * 256, (0,) * 256, 1, 1)
    with pytest.raises(SnapshotError, match="transactions committed"):
        Manifest.decode(dataclasses.replace(honest, tx_count=2**64 - 1).encode())
