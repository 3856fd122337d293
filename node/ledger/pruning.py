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

from collections.abc import Iterator

import plyvel

from node.ledger import layout as k
from node.ledger.receipts import decode_location, decode_receipts

# A LevelDB batch ends after this many heights or after the heights holding this many transactions,
# whichever comes first: small enough that a batch never holds a block's own write, or the interpreter,
# for long.
HEIGHTS_PER_BATCH = 16
TXS_PER_BATCH = 2048


def prune_heights(db: plyvel.DB, earliest: int, below: int) -> Iterator[int]:
    """Delete heights ``earliest`` .. ``below - 1``, yielding the earliest height kept after each batch.

    The caller may stop between batches (the store stays whole) and learns each new mark as it is written.
    """
    while earliest < below:
        batch = db.write_batch()
        height, txs = earliest, 0
        while height < below and height - earliest < HEIGHTS_PER_BATCH and txs < TXS_PER_BATCH:
            receipts = db.get(k.receipts_key(height), verify_checksums=True)
            for receipt in decode_receipts(receipts) if receipts is not None else ():
                key = k.tx_key(receipt.tx_hash)
                location = db.get(key, verify_checksums=True)
                if location is not None and decode_location(location).height == height:
                    batch.delete(key)
                txs += 1
            batch.delete(k.block_key(height))
            batch.delete(k.certificate_key(height))
            batch.delete(k.receipts_key(height))
            height += 1
        batch.put(k.META_EARLIEST, k.encode_height(height))
        batch.write()
        earliest = height
        yield earliest


def reclaim(db: plyvel.DB, below: int) -> None:
    """Compact what pruning below ``below`` deleted, so that the files holding it are rewritten without it.

    Blocks, certificates and receipts lie in contiguous ranges by height; the index entries are spread
    over the whole index by hash, but the index holds only the kept heights' transactions, so
    compacting all of it costs about what those heights wrote.  Compaction keeps whatever a live
    LevelDB snapshot still sees, and the store holds one per provable height (the last 32), so what
    a pass deleted comes back at a later pass, once those snapshots no longer see it: every pass
    compacts everything below its own mark.
    """
    for key_of in (k.block_key, k.certificate_key, k.receipts_key):
        db.compact_range(start=key_of(0), stop=key_of(below))
    db.compact_range(start=k.TX_INDEX, stop=k.prefix_end(k.TX_INDEX))
