"""The committed tip: what the next block must name as its parent.

The host holds the tip as a value and passes it forward: a commit returns
the new one, and block building and validity take it as an argument, so
nothing reads the parent back from the store or from a memo.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.core.block import block_hash, decode_block
from node.ledger.store import LedgerStore


@dataclass(frozen=True, slots=True)
class Tip:
    """The last committed block (height 0: the genesis) and the state after it."""

    height: int
    block_hash: bytes
    time_ms: int
    app_hash: bytes


def read_tip(store: LedgerStore) -> Tip:
    """The tip as the store holds it: at start, and after the store was written by someone else."""
    height = store.height
    if height == 0:
        return Tip(0, store.genesis_hash, 0, store.app_hash)
    raw = store.block(height)
    assert raw is not None, "the store holds every block up to its height"
    return Tip(height, block_hash(raw), decode_block(raw).time_ms, store.app_hash)
