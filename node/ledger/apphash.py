"""The app hash: a chain of digests of each block's state changes.

    changes_digest  = SHA-256(msgpack([[key, value], ...]))   pairs sorted by key
    app_hash(0)     = SHA-256(GENESIS_DOMAIN || u8 len(chain id) || chain id || genesis hash
                              || changes_digest(every genesis state record))
    app_hash(h)     = SHA-256(BLOCK_DOMAIN || app_hash(h-1) || changes_digest(block h))

Keys and values are the exact LevelDB records (node/ledger/layout.py): the
account and governance records the block wrote (a deleted record's value is
nil) plus the supply record, which every block includes.
Hashing the stored bytes means two validators agree on the app hash exactly
when they would write identical state, and the chaining makes one divergence
visible in every later hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgpack

GENESIS_DOMAIN = b"somnode-app-genesis-v1\x00"
BLOCK_DOMAIN = b"somnode-app-block-v1\x00"


def changes_digest(records: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """Digest of state records; ``records`` must already be sorted by key, keys unique; None is a deletion."""
    return hashlib.sha256(msgpack.packb(list(records), use_bin_type=True)).digest()


def genesis_app_hash(chain_id: str, genesis_hash: bytes, digest: bytes) -> bytes:
    encoded = chain_id.encode("utf-8")
    return hashlib.sha256(GENESIS_DOMAIN + bytes([len(encoded)]) + encoded + genesis_hash + digest).digest()


def next_app_hash(previous: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(BLOCK_DOMAIN + previous + digest).digest()
