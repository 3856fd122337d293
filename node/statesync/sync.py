"""State sync: a node with an empty ledger joins from a peer's snapshot instead of replaying every block.

Trust comes from the operator, not from the peers: a height T and the hash of
its block, read from a node the operator trusts (CometBFT's light-client
trust options work the same way).  From there:

1. Ask the linked peers which snapshots they keep, and take the newest
   height s below T that some peer offers.
2. Fetch blocks s .. T and check that each names the one before it by hash,
   up to the trusted hash of T.  Header s + 1 then certifies the state after
   s: its ``previous_app_hash`` and ``previous_results_hash``.
3. Check the manifest against that app hash, then every chunk against the
   manifest, as it arrives.  A chunk that does not verify is refused, its
   peer is recorded and never asked again, and another peer is asked.
4. Write the records, then block s as the tip (node/ledger/restore.py).

The node then starts as usual at height s and catches up block by block.
Nothing a peer sends is used before it is checked against the trusted hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from consensus.certificate import CommitCertificate
from node.core.block import BlockDecodeError, Header, decode_block, decode_header, split_block
from node.ledger.restore import LedgerRestore
from node.p2p.requests import PeerError
from node.p2p.transport import PeerInfo
from node.statesync.snapshot import CHUNKS, Manifest, SnapshotError, open_chunk

log = logging.getLogger(__name__)

# Chunks asked for at once, from different peers where there are several.
PARALLEL_CHUNKS = 4
# How long to wait before looking again for peers that can serve, after a round found none.
RETRY_S = 1.0


class StateSyncError(Exception):
    """No peer can serve a snapshot that verifies, for now; state sync looks again."""


class SnapshotPeers(Protocol):
    """The part of the peer network state sync uses."""

    def peers(self) -> tuple[PeerInfo, ...]: ...

    async def request_blocks(self, peer: bytes, from_height: int,
                             to_height: int) -> tuple[tuple[bytes, CommitCertificate], ...]: ...

    async def request_snapshots(self, peer: bytes) -> tuple[bytes, ...]: ...

    async def request_chunk(self, peer: bytes, height: int, index: int) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Trust:
    """The block the operator vouches for: its height and hash."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class Anchor:
    """Block s and the header after it, both proven by the hash chain from the trusted block."""

    block: bytes
    next_header: Header


class StateSync:
    def __init__(self, peers: SnapshotPeers, chain_id: str, trust: Trust,
                 restore: Callable[[], LedgerRestore]) -> None:
        """``restore`` makes a fresh, empty store to write into (one per snapshot tried)."""
        self._peers = peers
        self._chain_id = chain_id
        self._trust = trust
        self._restore = restore
        self.refused: dict[bytes, str] = {}  # peers that sent a manifest or chunk that did not verify: why
        # (peer, snapshot height) pairs that did not serve a chunk (no answer, or the snapshot gone): that
        # peer is not counted on for that snapshot again, so a peer that offers one and never serves it
        # cannot hold state sync on it.
        self._failed: set[tuple[bytes, int]] = set()

    async def run(self) -> int:
        """Restore the newest snapshot that verifies; return its height."""
        while True:
            try:
                return await self._attempt()
            except StateSyncError as exc:
                log.info("statesync.retry reason=%s", " ".join(str(exc).split()))
                await asyncio.sleep(RETRY_S)

    async def _attempt(self) -> int:
        offers = await self._offers()
        if not offers and self._failed:
            self._failed.clear()  # every offer failed once, perhaps for a passing reason: all get another chance
            offers = await self._offers()
        if not offers:
            raise StateSyncError(f"no linked peer offers a snapshot below the trusted height {self._trust.height}")
        height = max(offers)
        anchor = await self._anchor(height)
        app_hash = anchor.next_header.previous_app_hash
        manifest, servers = self._manifest(offers[height], app_hash)
        log.info("statesync.snapshot height=%d app_hash=%s peers=%d records=%d", height, app_hash.hex(),
                 len(servers), sum(manifest.chunk_records))
        restore = await asyncio.to_thread(self._restore)
        writing: set[asyncio.Future[None]] = set()
        try:
            await self._fetch_chunks(manifest, servers, restore, writing)
            writing.add(asyncio.ensure_future(asyncio.to_thread(
                restore.finish, height=height, app_hash=app_hash,
                results_hash=anchor.next_header.previous_results_hash, tx_count=manifest.tx_count,
                history_count=manifest.history_count, block=anchor.block)))
            await asyncio.shield(asyncio.gather(*writing))
        finally:
            # A write on a worker thread outlives a cancelled await: the store closes only after the last.
            await asyncio.gather(*writing, return_exceptions=True)
            restore.close()
        log.info("statesync.restored height=%d records=%d", height, restore.records)
        return height

    async def _offers(self) -> dict[int, dict[bytes, list[bytes]]]:
        """Snapshot height -> manifest bytes -> the peers offering it, for heights below the trusted one."""
        offers: dict[int, dict[bytes, list[bytes]]] = {}
        for peer in self._peers.peers():
            if peer.public_key in self.refused:
                continue
            try:
                manifests = await self._peers.request_snapshots(peer.public_key)
            except (PeerError, TimeoutError) as exc:
                log.info("statesync.peer_unavailable peer=%s reason=%s", peer.public_key.hex()[:16], exc)
                continue
            for packed in manifests:
                try:
                    manifest = Manifest.decode(packed)
                except SnapshotError as exc:
                    self._refuse(peer.public_key, f"a malformed manifest: {exc}")
                    break
                if 1 <= manifest.height < self._trust.height \
                        and (peer.public_key, manifest.height) not in self._failed:
                    offers.setdefault(manifest.height, {}).setdefault(packed, []).append(peer.public_key)
        return offers

    async def _anchor(self, height: int) -> Anchor:
        """Blocks ``height`` .. T from a peer that keeps them, proven by the chain of hashes to the trusted one."""
        trust = self._trust
        keepers = [p.public_key for p in self._peers.peers()
                   if p.public_key not in self.refused and p.earliest <= height
                   and p.height is not None and p.height >= trust.height]
        for peer in keepers:
            try:
                blocks = await self._blocks(peer, height, trust.height)
            except (PeerError, TimeoutError) as exc:
                log.info("statesync.peer_unavailable peer=%s reason=%s", peer.hex()[:16], exc)
                continue
            try:
                return self._check_chain(height, blocks)
            except (SnapshotError, BlockDecodeError) as exc:
                self._refuse(peer, f"blocks that do not lead to the trusted block: {exc}")
        raise StateSyncError(f"no linked peer keeps blocks {height}..{trust.height} and answers for them")

    async def _blocks(self, peer: bytes, first: int, last: int) -> list[bytes]:
        """Block ``first`` whole, and the headers of the blocks above it up to ``last``: only block ``first``
        becomes this node's, and a header is all the hash chain needs (a block's hash covers its header)."""
        kept: list[bytes] = []
        while first + len(kept) <= last:
            got = await self._peers.request_blocks(peer, first + len(kept), last)
            if not got:
                raise PeerError(f"peer {peer.hex()[:16]} sent no blocks from {first + len(kept)}")
            for raw, _ in got:
                kept.append(raw if not kept else split_block(raw)[0])
        return kept

    def _check_chain(self, height: int, blocks: list[bytes]) -> Anchor:
        """Block ``height`` and header ``height + 1``, once block T's hash is the trusted one and each block
        from T down names the hash of the one below it."""
        trust = self._trust
        expected = trust.block_hash
        headers: list[Header] = []
        for offset in range(len(blocks) - 1, -1, -1):
            head = split_block(blocks[offset])[0] if offset == 0 else blocks[offset]
            if hashlib.sha256(head).digest() != expected:
                raise SnapshotError(f"block {height + offset} does not have the hash its successor names")
            header = decode_header(head)
            if header.height != height + offset or header.chain_id != self._chain_id:
                raise SnapshotError(f"block {height + offset} is a header of {header.chain_id!r} at "
                                    f"height {header.height}")
            headers.append(header)
            expected = header.previous_block_hash
        decode_block(blocks[0])  # its body must be the one its header names: it becomes this node's tip
        return Anchor(blocks[0], headers[-2])

    def _manifest(self, offered: dict[bytes, list[bytes]], app_hash: bytes) -> tuple[Manifest, list[bytes]]:
        """The offered manifest that hashes to the certified ``app_hash``, and every peer offering one with those
        chunks; the peers that offered another for the same height are recorded.

        The two counters at a manifest's end are the serving peers' word, not covered by the app hash
        (docs/protocol.md §18): of the manifests with the certified chunks, the one most peers offer gives them.
        """
        valid: list[tuple[Manifest, list[bytes]]] = []
        for packed, peers in offered.items():
            manifest = Manifest.decode(packed)
            try:
                manifest.check(app_hash)
            except SnapshotError as exc:
                for peer in peers:
                    self._refuse(peer, f"a manifest of height {manifest.height} that does not verify: {exc}")
                continue
            valid.append((manifest, peers))
        if not valid:
            raise StateSyncError("no offered manifest hashes to the certified app hash")
        manifest = max(valid, key=lambda offer: len(offer[1]))[0]
        return manifest, [peer for _, peers in valid for peer in peers]

    async def _fetch_chunks(self, manifest: Manifest, servers: list[bytes], restore: LedgerRestore,
                            writing: set[asyncio.Future[None]]) -> None:
        pending: asyncio.Queue[int] = asyncio.Queue()
        for index in range(CHUNKS):
            pending.put_nowait(index)
        workers = [asyncio.create_task(self._chunk_worker(offset, manifest, servers, pending, restore, writing))
                   for offset in range(PARALLEL_CHUNKS)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _chunk_worker(self, offset: int, manifest: Manifest, servers: list[bytes],
                            pending: asyncio.Queue[int], restore: LedgerRestore,
                            writing: set[asyncio.Future[None]]) -> None:
        while not pending.empty():
            index = pending.get_nowait()
            records = await self._chunk(offset + index, index, manifest, servers)
            write = asyncio.ensure_future(asyncio.to_thread(restore.add, records))
            writing.add(write)
            await asyncio.shield(write)

    async def _chunk(self, turn: int, index: int, manifest: Manifest,
                     servers: list[bytes]) -> list[tuple[bytes, bytes]]:
        """Chunk ``index``, verified, from the first of the serving peers (taken in turn) that sends one."""
        height = manifest.height
        linked = {p.public_key for p in self._peers.peers()}
        candidates = [peer for peer in servers
                      if peer not in self.refused and (peer, height) not in self._failed and peer in linked]
        for attempt in range(len(candidates)):
            peer = candidates[(turn + attempt) % len(candidates)]
            if peer in self.refused or (peer, height) in self._failed:
                continue  # struck by another worker meanwhile
            try:
                data = await self._peers.request_chunk(peer, height, index)
            except (PeerError, TimeoutError) as exc:
                self._failed.add((peer, height))
                log.info("statesync.peer_unavailable peer=%s reason=%s", peer.hex()[:16], exc)
                continue
            if data is None:
                self._failed.add((peer, height))
                log.info("statesync.snapshot_gone peer=%s height=%d", peer.hex()[:16], height)
                continue
            try:
                return await asyncio.to_thread(open_chunk, index, data, manifest)
            except SnapshotError as exc:
                self._refuse(peer, f"chunk {index} of height {height} does not verify: {exc}")
        raise StateSyncError(f"no peer left to serve chunk {index} of the snapshot of height {height}")

    def _refuse(self, peer: bytes, reason: str) -> None:
        if peer not in self.refused:
            self.refused[peer] = reason
            log.warning("statesync.peer_refused peer=%s reason=%s", peer.hex()[:16], " ".join(reason.split()))
