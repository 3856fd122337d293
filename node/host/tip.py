"""The committed tip: what the next block must name as its parent.

The host holds the tip as a value and passes it forward: a commit returns
the new one, and block building and validity take it as an argument, so
nothing reads the parent back from the store or from a memo.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.core.block import block_hash, decode_block
from node.core.validator_set import validators_hash
from node.ledger.store import LedgerStore


@dataclass(frozen=True, slots=True)
class Tip:
    """The last committed block (height 0: the genesis) and the state after it.

    Each hash is what the next block's header must carry: the parent's hash, the
    app hash and results root after the parent, and ``next_validators_hash``, the
    hash of the set of height + 2 (known once height is committed: a change holds
    two heights after its block).  ``tx_count`` says whether the block changed the
    state: only the next header certifies what it did (node/host/heartbeat.py).
    """

    height: int
    block_hash: bytes
    time_ms: int
    app_hash: bytes
    results_hash: bytes
    next_validators_hash: bytes
    tx_count: int


def read_tip(store: LedgerStore) -> Tip:
    """The tip as the store holds it: at start, and after the store was written by someone else."""
    height = store.height
    if height == 0:
        return tip_of(store, store.genesis_hash, 0, 0)
    raw = store.block(height)
    assert raw is not None, "the store holds every block up to its height"
    header = decode_block(raw).header
    return tip_of(store, block_hash(raw), header.time_ms, header.tx_count)


def tip_of(store: LedgerStore, tip_hash: bytes, time_ms: int, tx_count: int) -> Tip:
    """The tip at the store's height, whose block has ``tip_hash``, ``time_ms`` and ``tx_count`` transactions."""
    height = store.height
    return Tip(height, tip_hash, time_ms, store.app_hash, store.results_hash,
               validators_hash(store.validators_at(height + 2)[1]), tx_count)
