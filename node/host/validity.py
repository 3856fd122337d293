"""Proposing and checking blocks against the committed chain.

A proposal is valid only if every honest validator would apply it the same
way and no junk rides along: canonical encoding, the right chain, height and
parent (block hash and app hash), every signature valid, no transaction twice,
and no transaction that the ledger would refuse without effect (a bad nonce or
an unknown sender: such bytes could be replayed into a later block).  Business
failures such as insufficient funds are allowed: they consume the nonce and
leave a receipt, exactly as the ledger documents.

Signature checks are the expensive part, so ``preverify`` runs them in one
batch on the verifier's thread pool before the proposal reaches the engine;
``is_valid`` (the paper's synchronous ``valid(v)``) then finds them in the
verifier's cache.  A transaction's cache key is its hash, as in the mempool, so
a transfer checked on either path is not checked again on the other.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node.core.block import Block, BlockDecodeError, block_hash, decode_block
from node.core.tx import SignedTransaction, TxDecodeError, decode_tx, signing_prefix
from node.ledger.store import LedgerStore

# Receipt codes that mean "this transaction should never have been proposed".
JUNK_CODES = frozenset({"bad_nonce", "unknown_account"})
_DECODED_CACHE = 8


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """A block with its transactions decoded; ``unchecked`` are the ones whose
    signatures this node has not verified (the rest came from its mempool)."""

    block: Block
    txs: tuple[SignedTransaction, ...]
    unchecked: tuple[SignedTransaction, ...]


class Chain:
    """The committed chain as the proposer and the validity check see it."""

    def __init__(self, store: LedgerStore, verifier, validators: frozenset[bytes],
                 known: Callable[[bytes], SignedTransaction | None] = lambda tx_hash: None) -> None:
        self.store = store
        self._verifier = verifier
        self._known = known
        self._validators = validators
        self._prefix = signing_prefix(store.chain_id)
        self._decoded: OrderedDict[bytes, DecodedBlock | None] = OrderedDict()
        # (value, its hash) of recently seen values, by identity: a proposal's value is one bytes
        # object passed from step to step, and hashing a block of thousands of transfers each time
        # showed in profiles.
        self._hashed: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
        self._tip: tuple[int, bytes, int] | None = None  # (height, hash, time_ms) of the committed tip

    # ---- the parent a new block must name

    def parent_hash(self) -> bytes:
        return self._committed_tip()[1]

    def parent_time_ms(self) -> int:
        return self._committed_tip()[2]

    def committed(self, height: int, value_hash: bytes, block: Block) -> None:
        """The block just committed at ``height`` is the new tip: nothing to read back from the store."""
        assert height == self.store.height, "the store holds the block first"
        self._tip = (height, value_hash, block.time_ms)

    def _committed_tip(self) -> tuple[int, bytes, int]:
        """The tip block's hash and time; read from the store when no commit told us (after a restart)."""
        height = self.store.height
        if self._tip is None or self._tip[0] != height:
            if height == 0:
                self._tip = (0, self.store.genesis_hash, 0)
            else:
                raw = self.store.block(height)
                assert raw is not None, "the store holds every block up to its height"
                self._tip = (height, block_hash(raw), decode_block(raw).time_ms)
        return self._tip

    # ---- proposing

    def build(self, height: int, proposer: bytes, now_ms: int, txs: Sequence[SignedTransaction]) -> bytes:
        assert height == self.store.height + 1, "blocks are built on the committed tip"
        block = Block(
            chain_id=self.store.chain_id,
            height=height,
            time_ms=max(now_ms, self.parent_time_ms()),
            proposer=proposer,
            previous_block_hash=self.parent_hash(),
            previous_app_hash=self.store.app_hash,
            txs=tuple(stx.raw for stx in txs),
        )
        value = block.encode()
        # The engine checks our own proposal with valid(v) too: it need not decode what we just built.
        self._remember(self._hash(value), DecodedBlock(block, tuple(txs), ()))
        return value

    # ---- checking

    def decode(self, value: bytes | None) -> DecodedBlock | None:
        """The block and its transactions, or None when malformed; memoised for a few values."""
        if value is None:
            return None
        key = self._hash(value)
        if key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        try:
            block = decode_block(value)
            decoded: DecodedBlock | None = self._decode_txs(block)
        except (BlockDecodeError, TxDecodeError):
            decoded = None
        self._remember(key, decoded)
        return decoded

    def _decode_txs(self, block: Block) -> DecodedBlock:
        """Decode the block's transactions, taking those already in our mempool as they are:
        the mempool admits only canonical transactions whose signatures verified."""
        known, sha256 = self._known, hashlib.sha256
        txs, unchecked = [], []
        for raw in block.txs:
            stx = known(sha256(raw).digest())
            if stx is None:
                stx = decode_tx(raw)
                unchecked.append(stx)
            txs.append(stx)
        return DecodedBlock(block, tuple(txs), tuple(unchecked))

    def _hash(self, value: bytes) -> bytes:
        """``block_hash(value)``, computed once per value object while it is among the recent ones."""
        seen = self._hashed.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        digest = block_hash(value)
        self._hashed[id(value)] = (value, digest)  # holding the value keeps its id from being reused
        if len(self._hashed) > _DECODED_CACHE:
            self._hashed.popitem(last=False)
        return digest

    def _remember(self, key: bytes, decoded: DecodedBlock | None) -> None:
        self._decoded[key] = decoded
        if len(self._decoded) > _DECODED_CACHE:
            self._decoded.popitem(last=False)

    def signature_items(self, decoded: DecodedBlock) -> list[tuple[bytes, bytes, bytes]]:
        """What is left to verify: the transactions that did not come from our mempool."""
        prefix = self._prefix
        return [stx.verify_item(prefix) for stx in decoded.unchecked]

    async def preverify(self, value: bytes) -> None:
        """Warm the verifier's cache with the proposal's unchecked signatures, in one batch."""
        decoded = self.decode(value)
        if decoded is not None and decoded.unchecked:
            await self._verifier.verify_batch(self.signature_items(decoded), urgent=True,
                                              keys=[stx.hash for stx in decoded.unchecked])

    def is_valid(self, height: int, value: bytes) -> bool:
        """The paper's ``valid(v)`` for a block proposed at ``height``."""
        store = self.store
        if height != store.height + 1:
            return False
        decoded = self.decode(value)
        if decoded is None:
            return False
        block = decoded.block
        if (block.chain_id != store.chain_id or block.height != height
                or block.proposer not in self._validators
                or block.previous_block_hash != self.parent_hash()
                or block.previous_app_hash != store.app_hash
                or block.time_ms < self.parent_time_ms()):
            return False
        hashes = {stx.hash for stx in decoded.txs}
        if len(hashes) != len(decoded.txs):
            return False
        if not self._signatures_valid(decoded):
            return False
        result = store.check_block(decoded.txs)
        return not JUNK_CODES.intersection(result.codes)

    def _signatures_valid(self, decoded: DecodedBlock) -> bool:
        """Every unchecked signature holds: cache hits after ``preverify``, checked here otherwise."""
        verify_many = self._verifier.verify_many
        # One at a time, so a proposal full of bad signatures costs one more check here, not all of them again.
        return all(verify_many([item], keys=[stx.hash])[0]
                   for item, stx in zip(self.signature_items(decoded), decoded.unchecked, strict=True))
