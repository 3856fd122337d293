"""The client API's view of a running validator (implements ``ApiBackend``).

Reads come from the committed store and the mempool; nothing here mutates
ledger state, so the API can never interfere with the consensus task beyond
queueing transactions in the mempool.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from consensus.certificate import CommitCertificate
from consensus.messages import Proposal, Vote
from node.api.backend import (
    BlockView,
    CommitCertificateView,
    PrecommitView,
    TxState,
    TxStatus,
    TxView,
)
from node.api.events import BlockFeed
from node.core.address import encode_address
from node.core.amount import format_som
from node.core.block import Block, block_hash, decode_block
from node.core.genesis import Genesis
from node.core.tx import SignedTransaction, decode_tx
from node.ledger.store import LedgerCorruptError
from node.mempool.pool import AdmitResult
from node.mempool.relay import TxGossip


class NodeBackend:
    def __init__(self, *, genesis: Genesis, node_id: str, store, mempool, network, engine_view,
                 decode_certificate, registry: CollectorRegistry, evidence_view=lambda: (),
                 on_corrupt=lambda exc: None) -> None:
        self.chain_id = genesis.chain_id
        self.node_id = node_id
        self.metrics_registry = registry
        self._genesis = genesis
        self._store = store
        self._mempool = mempool
        self._network = network
        self._engine_view = engine_view
        self._decode_certificate = decode_certificate
        self._evidence_view = evidence_view
        self._on_corrupt = on_corrupt
        self.feed = BlockFeed()
        self.gossip = TxGossip(network.broadcast)

    async def submit(self, raws: list[bytes]) -> list[AdmitResult]:
        """Admit into the mempool, then gossip what was newly accepted to every validator."""
        results = await self._mempool.add_batch(raws)
        self.gossip.add([raw for raw, result in zip(raws, results) if result.accepted and result.code == "accepted"])
        return results

    def tx_status(self, tx_hash: bytes) -> TxStatus:
        with self._reading():
            location = self._store.tx_location(tx_hash)
            raw_block = None if location is None else self._store.block(location.height)
        if location is None:
            pending = self._mempool.get(tx_hash)
            return TxStatus(TxState.UNKNOWN) if pending is None else TxStatus(TxState.PENDING, tx=tx_view(pending))
        # Blocks are kept with their index entries today; once old blocks can be pruned, a
        # transaction found in the index but not in a block keeps its receipt without its fields.
        tx = None if raw_block is None else tx_view(decode_tx(decode_block(raw_block).txs[location.index]))
        return TxStatus(TxState.COMMITTED, location.height, location.index, location.code, tx)

    def account(self, public_key: bytes) -> tuple[int, int]:
        with self._reading():
            account = self._store.account(public_key)
        return (0, 0) if account is None else (account.balance, account.nonce)

    def pending_nonce(self, public_key: bytes) -> int:
        return self._mempool.pending_nonce(public_key)

    def latest_height(self) -> int:
        return self._store.height

    def block(self, height: int) -> BlockView | None:
        store = self._store
        if not 1 <= height <= store.height:
            return None
        with self._reading():
            raw = store.block(height)
            cert_raw = store.certificate(height)
            if raw is None or cert_raw is None:
                return None
            if height == store.height:
                app_hash = store.app_hash
            else:
                app_hash = decode_block(store.block(height + 1)).previous_app_hash
        return block_view(raw, self._decode_certificate(cert_raw), app_hash)

    def status(self) -> dict[str, Any]:
        store = self._store
        engine = self._engine_view()
        return {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "height": store.height,
            "app_hash": store.app_hash.hex(),
            "round": engine.round,
            "consensus_height": engine.height,
            "validators": [
                {"name": v.name, "address": encode_address(v.public_key), "power": v.power}
                for v in self._genesis.validators
            ],
            "peers": [encode_address(p.public_key) for p in self._network.peers()],
            "mempool_size": len(self._mempool),
            "supply": store.supply().outstanding,
            "supply_som": format_som(store.supply().outstanding),
            "committed_txs": store.committed_txs,
            "evidence": [
                {"validator": encode_address(e.validator), "height": e.first.height, "round": e.first.round,
                 "type": _message_kind(e.first)}
                for e in self._evidence_view()
            ],
        }

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A damaged store found by a read stops the node: serving errors for committed data hides the damage."""
        try:
            yield
        except LedgerCorruptError as exc:
            self._on_corrupt(exc)
            raise

    def subscribe(self) -> AsyncIterator[BlockView]:
        return self.feed.subscribe()


def block_view(raw: bytes, certificate: CommitCertificate, app_hash: bytes) -> BlockView:
    """A stored block as the API shows it."""
    block = decode_block(raw)
    # A tx hash is SHA-256 of its signed bytes.
    tx_hashes = tuple(hashlib.sha256(tx).digest() for tx in block.txs)
    return committed_block_view(block, block_hash(raw), certificate, app_hash, tx_hashes)


def committed_block_view(block: Block, hash_: bytes, certificate: CommitCertificate, app_hash: bytes,
                         tx_hashes: tuple[bytes, ...]) -> BlockView:
    """A block the node has just committed, from what the commit already computed: decoding
    and hashing a large block again for the event feed showed in profiles."""
    return BlockView(
        height=block.height,
        time_ms=block.time_ms,
        block_hash=hash_,
        proposer=block.proposer,
        previous_block_hash=block.previous_block_hash,
        previous_app_hash=block.previous_app_hash,
        app_hash=app_hash,
        tx_hashes=tx_hashes,
        commit=CommitCertificateView(
            certificate.round, certificate.value_id,
            tuple(PrecommitView(v.validator, v.signature) for v in certificate.precommits),
        ),
    )


def tx_view(stx: SignedTransaction) -> TxView:
    tx = stx.tx
    return TxView(tx.kind.name.lower(), tx.sender, tx.nonce, tx.amount, tx.recipient, tx.memo)


def _message_kind(message: Proposal | Vote) -> str:
    return "proposal" if isinstance(message, Proposal) else message.type.name.lower()
