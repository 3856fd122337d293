"""The leaves of a block's results root: how each transaction ended, as a light client checks it.

Block h+1's header carries ``previous_results_hash``, the RFC 6962 root over
one leaf per transaction of block h, in block order:

    leaf = tx_hash (32) || code (u8)
           [|| credited u64be || passed_on u64be || linked key (32)]   a payment whose excess
                                                                       went to a linked account

``code`` is the receipt code's byte (node/ledger/receipts.py); the waterfall
part is the one the transaction index keeps.  With the header certified, a
receipt is proven by its audit path, so a bank can show a customer that a
payment failed or how much of it was passed on, without the node's word.
"""

from __future__ import annotations

import struct

from node.core import rfc6962

_WATERFALL = struct.Struct(">QQ")
HASH_SIZE = 32
# A leaf's two lengths: hash and code, and with the waterfall after them.
LEAF_SIZES = (HASH_SIZE + 1, HASH_SIZE + 1 + _WATERFALL.size + HASH_SIZE)
EMPTY_RESULTS_ROOT = rfc6962.EMPTY_ROOT


def result_leaf(tx_hash: bytes, code: int, waterfall: tuple[int, int, bytes] | None = None) -> bytes:
    """One transaction's leaf; ``waterfall`` is (credited, passed on, linked account)."""
    assert len(tx_hash) == HASH_SIZE and 0 <= code <= 255, "a 32-byte hash and a code byte"
    leaf = tx_hash + bytes((code,))
    if waterfall is None:
        return leaf
    credited, passed_on, linked = waterfall
    assert len(linked) == HASH_SIZE, "the linked account is a 32-byte key"
    return leaf + _WATERFALL.pack(credited, passed_on) + linked
