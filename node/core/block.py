"""Blocks: the value validators agree on at each height.

A block is a canonical msgpack array, and its hash is the consensus value id
(SHA-256 of the bytes), so the commit certificate of height h signs exactly
these bytes.  Execution happens after commit, so a block carries the app hash
that resulted from the block before it (as in Tendermint): a proposal built on
a diverged state is refused by every honest validator before it can commit.

    [version, chain_id, height, time_ms, proposer, previous_block_hash, previous_app_hash, [tx bytes, ...]]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

from node.core.codec import CodecError, unpack_bounded

BLOCK_VERSION = 1
HASH_SIZE = 32
# Limits that keep one block within a frame: the consensus config can only lower them.
MAX_BLOCK_TXS = 20_000
MAX_BLOCK_BYTES = 8 * 1024 * 1024
GENESIS_BLOCK_HASH = bytes(HASH_SIZE)
# How far ahead of a validator's clock a live proposal's time may be, by default: above the
# skew of NTP-kept clocks and a proposal's trip, far below a Bishkek day (block time drives
# the daily limits; docs/operators.md, "Clocks").
DEFAULT_MAX_TIME_AHEAD_MS = 2_000


class BlockDecodeError(ValueError):
    """The bytes are not one canonical block."""


@dataclass(frozen=True, slots=True)
class Block:
    chain_id: str
    height: int
    time_ms: int
    proposer: bytes
    previous_block_hash: bytes
    previous_app_hash: bytes
    txs: tuple[bytes, ...]

    def encode(self) -> bytes:
        return msgpack.packb(
            [BLOCK_VERSION, self.chain_id, self.height, self.time_ms, self.proposer,
             self.previous_block_hash, self.previous_app_hash, list(self.txs)],
            use_bin_type=True,
        )


def block_hash(raw: bytes) -> bytes:
    """The block's hash, which is also its consensus value id."""
    return hashlib.sha256(raw).digest()


def decode_block(raw: bytes) -> Block:
    """Parse canonical block bytes; the transactions inside stay raw bytes."""
    try:
        fields = unpack_bounded(raw, what="block", max_bytes=MAX_BLOCK_BYTES, max_array_len=MAX_BLOCK_TXS)
    except CodecError as exc:
        raise BlockDecodeError(str(exc)) from exc
    if type(fields) is not list or len(fields) != 8 or fields[0] != BLOCK_VERSION:
        raise BlockDecodeError("a block is an 8-element array starting with version 1")
    _, chain_id, height, time_ms, proposer, prev_hash, prev_app, txs = fields
    if (type(chain_id) is not str or type(height) is not int or height < 1
            or type(time_ms) is not int or time_ms < 0
            or type(proposer) is not bytes or len(proposer) != 32
            or type(prev_hash) is not bytes or len(prev_hash) != HASH_SIZE
            or type(prev_app) is not bytes or len(prev_app) != HASH_SIZE
            or type(txs) is not list or any(type(t) is not bytes for t in txs)):
        raise BlockDecodeError("a block field has the wrong type or size")
    block = Block(chain_id, height, time_ms, proposer, prev_hash, prev_app, tuple(txs))
    if block.encode() != raw:
        raise BlockDecodeError("the block encoding is not canonical")
    return block
