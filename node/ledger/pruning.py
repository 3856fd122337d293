"""Pruning: deleting the blocks a node no longer keeps, with everything stored per block.

A block's height keys its block bytes, commit certificate and receipts; its
transactions' index entries are keyed by hash and found through the receipts.
Heights go oldest first, a few at a time, each group in one LevelDB batch that
also moves the earliest kept height (``layout.META_EARLIEST``): a crash leaves
the store with every height below that mark gone and every height from it
whole, so a restart simply carries on.  The state (the tree's leaves) and the
governance history are never pruned.

Deleting only writes tombstones; the space comes back when LevelDB compacts
the ranges, which ``reclaim`` asks it to do for the pruned heights.  The index
of a transaction included twice keeps the inclusion that consumed its nonce
(node/ledger/store.py), so an entry is deleted only with the block it names.
"""

from __future__ import annotations

from collections.abc import Callable

import plyvel

from node.ledger import layout as k
from node.ledger.receipts import decode_location, decode_receipts

# Heights deleted per LevelDB batch: small enough that a batch never holds up a block's own write for long.
HEIGHTS_PER_BATCH = 16


def prune_heights(db: plyvel.DB, earliest: int, below: int, stopping: Callable[[], bool]) -> int:
    """Delete heights ``earliest`` .. ``below - 1``; the earliest height kept when done or told to stop."""
    while earliest < below:
        end = min(earliest + HEIGHTS_PER_BATCH, below)
        batch = db.write_batch()
        for height in range(earliest, end):
            receipts = db.get(k.receipts_key(height), verify_checksums=True)
            for receipt in decode_receipts(receipts) if receipts is not None else ():
                key = k.tx_key(receipt.tx_hash)
                location = db.get(key, verify_checksums=True)
                if location is not None and decode_location(location).height == height:
                    batch.delete(key)
            batch.delete(k.block_key(height))
            batch.delete(k.certificate_key(height))
            batch.delete(k.receipts_key(height))
        batch.put(k.META_EARLIEST, k.encode_height(end))
        batch.write()
        earliest = end
        if stopping():
            break
    return earliest


def reclaim(db: plyvel.DB, below: int) -> None:
    """Compact what pruning below ``below`` deleted, so that the files holding it are rewritten without it.

    Blocks, certificates and receipts lie in contiguous ranges by height; the index entries are spread
    over the whole index by hash, but the index holds only the kept heights' transactions, so
    compacting all of it costs about what those heights wrote.  Compaction keeps whatever a live
    LevelDB snapshot still sees, and the store holds one per provable height, so what one pass
    deleted comes back at the next pass, which compacts everything below its own mark.
    """
    for key_of in (k.block_key, k.certificate_key, k.receipts_key):
        db.compact_range(start=key_of(0), stop=key_of(below))
    db.compact_range(start=k.TX_INDEX, stop=k.prefix_end(k.TX_INDEX))
