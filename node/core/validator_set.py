"""A validator set's canonical bytes and hash, shared by the ledger and light clients.

The ledger stores each set as these bytes (node/ledger/layout.py, ``v``
records), and a block header's ``next_validators_hash`` is their SHA-256, so
a light client that holds a set recomputes the hash without the ledger (and
without LevelDB) and follows the sets from the genesis one header at a time.

    msgpack [[key (bin 32), power (uint)], ...]     sorted by key bytes, as the ledger keeps a set
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgpack


def encode_validators(validators: Sequence[tuple[bytes, int]]) -> bytes:
    encoded: bytes = msgpack.packb([[key, power] for key, power in validators], use_bin_type=True)
    return encoded


def validators_hash(validators: Sequence[tuple[bytes, int]]) -> bytes:
    """What a header's ``next_validators_hash`` is for the set of the next height."""
    return hashlib.sha256(encode_validators(validators)).digest()
