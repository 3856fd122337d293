"""Blocks: the value validators agree on at each height (docs/protocol.md §12).

A block is a header that commits to a body:

    block  = u32be len(header) || header || body
    header = [2, chain_id, height, time_ms, proposer, previous_block_hash, previous_app_hash,
              previous_results_hash, next_validators_hash, tx_root, tx_count]
    body   = [tx bytes, ...]

both canonical msgpack.  The block hash is SHA-256 of the header alone, and it
is the consensus value id (consensus/messages.py ``value_id``), so a commit
certificate signs the header and, through ``tx_root`` (RFC 6962, over the
signed transaction bytes), every transaction: a light client checks a header
against its certificate without the body, and one transaction by its audit
path.  Decoding refuses a body whose root or count differs from the header's,
which is what makes two blocks with one header impossible to accept.

Execution happens after commit, so a block carries what resulted from the block
before it (as in Tendermint): the app hash and the root of its results (node/core/
results.py).  A proposal built on a diverged state is refused by every honest
validator before it can commit.  ``next_validators_hash`` names the set that
signs the next height's certificate, so a light client follows the sets from the
genesis one header at a time.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack

from consensus.messages import value_id
from node.core import rfc6962
from node.core.codec import CodecError, unpack_bounded

BLOCK_VERSION = 2
HASH_SIZE = 32
KEY_SIZE = 32
# Limits that keep one block within a frame: the consensus config can only lower them.
MAX_BLOCK_TXS = 20_000
MAX_BLOCK_BYTES = 8 * 1024 * 1024
# A header is about 300 bytes with the longest chain id; anything far beyond is not one.
MAX_HEADER_BYTES = 1024
MAX_CHAIN_ID_BYTES = 64
U64 = 2**64 - 1
# How far ahead of a validator's clock a live proposal's time may be, by default: above the
# skew of NTP-kept clocks and a proposal's trip, far below a Bishkek day (block time drives
# the daily limits; docs/operators.md, "Clocks").
DEFAULT_MAX_TIME_AHEAD_MS = 2_000

_LENGTH = struct.Struct(">I")


class BlockDecodeError(ValueError):
    """The bytes are not one canonical block (or header)."""


@dataclass(frozen=True, slots=True)
class Header:
    """What the commit certificate of a height signs, by its hash."""

    chain_id: str
    height: int
    time_ms: int
    proposer: bytes
    previous_block_hash: bytes
    previous_app_hash: bytes
    previous_results_hash: bytes
    next_validators_hash: bytes
    tx_root: bytes
    tx_count: int

    def encode(self) -> bytes:
        encoded: bytes = msgpack.packb(
            [BLOCK_VERSION, self.chain_id, self.height, self.time_ms, self.proposer, self.previous_block_hash,
             self.previous_app_hash, self.previous_results_hash, self.next_validators_hash, self.tx_root,
             self.tx_count],
            use_bin_type=True,
        )
        return encoded

    def hash(self) -> bytes:
        """The block hash: SHA-256 of the header bytes."""
        return hashlib.sha256(self.encode()).digest()


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[bytes, ...]

    def encode(self) -> bytes:
        header = self.header.encode()
        body: bytes = msgpack.packb(list(self.txs), use_bin_type=True)
        return _LENGTH.pack(len(header)) + header + body


def build_block(*, chain_id: str, height: int, time_ms: int, proposer: bytes, previous_block_hash: bytes,
                previous_app_hash: bytes, previous_results_hash: bytes, next_validators_hash: bytes,
                txs: Sequence[bytes]) -> Block:
    """A block over ``txs``, its header's ``tx_root`` and ``tx_count`` computed from them."""
    header = Header(chain_id, height, time_ms, proposer, previous_block_hash, previous_app_hash,
                    previous_results_hash, next_validators_hash, rfc6962.root(txs), len(txs))
    return Block(header, tuple(txs))


def block_hash(raw: bytes) -> bytes:
    """The hash of a block's bytes, which is its consensus value id: the same function, so the two
    cannot part."""
    return value_id(raw)


def split_block(raw: bytes) -> tuple[bytes, bytes]:
    """(header bytes, body bytes) of a block, without decoding either."""
    if len(raw) < _LENGTH.size:
        raise BlockDecodeError("a block starts with the 4-byte length of its header")
    (length,) = _LENGTH.unpack_from(raw)
    if not 0 < length <= min(MAX_HEADER_BYTES, len(raw) - _LENGTH.size):
        raise BlockDecodeError(f"a block's header length {length} is out of range")
    return raw[_LENGTH.size:_LENGTH.size + length], raw[_LENGTH.size + length:]


def decode_header(raw: bytes) -> Header:
    """Parse canonical header bytes, as a light client receives them."""
    try:
        fields = unpack_bounded(raw, what="block header", max_bytes=MAX_HEADER_BYTES, max_array_len=11)
    except CodecError as exc:
        raise BlockDecodeError(str(exc)) from exc
    if type(fields) is not list or len(fields) != 11 or fields[0] != BLOCK_VERSION or type(fields[0]) is not int:
        raise BlockDecodeError(f"a block header is an 11-element array starting with version {BLOCK_VERSION}")
    _, chain_id, height, time_ms, proposer, previous_block, previous_app, previous_results, next_validators, \
        tx_root, tx_count = fields
    hashes = (previous_block, previous_app, previous_results, next_validators, tx_root)
    if type(chain_id) is not str or not 0 < len(chain_id.encode("utf-8")) <= MAX_CHAIN_ID_BYTES:
        raise BlockDecodeError(f"a block's chain id is 1..{MAX_CHAIN_ID_BYTES} bytes of text")
    if type(height) is not int or not 1 <= height <= U64 or type(time_ms) is not int or not 0 <= time_ms <= U64:
        raise BlockDecodeError("a block's height is 1..2^64-1 and its time 0..2^64-1")
    if type(proposer) is not bytes or len(proposer) != KEY_SIZE:
        raise BlockDecodeError(f"a block's proposer is a {KEY_SIZE}-byte key")
    if any(type(h) is not bytes or len(h) != HASH_SIZE for h in hashes):
        raise BlockDecodeError(f"a block header's hashes are {HASH_SIZE} bytes each")
    if type(tx_count) is not int or not 0 <= tx_count <= MAX_BLOCK_TXS:
        raise BlockDecodeError(f"a block's transaction count is 0..{MAX_BLOCK_TXS}")
    header = Header(chain_id, height, time_ms, proposer, previous_block, previous_app, previous_results,
                    next_validators, tx_root, tx_count)
    if header.encode() != raw:
        raise BlockDecodeError("the block header's encoding is not canonical")
    return header


def decode_block(raw: bytes) -> Block:
    """Parse canonical block bytes; the transactions stay raw bytes, and must be the ones the header's
    ``tx_root`` and ``tx_count`` name."""
    if len(raw) > MAX_BLOCK_BYTES:
        raise BlockDecodeError(f"block is {len(raw)} bytes; the limit is {MAX_BLOCK_BYTES}")
    header_bytes, body = split_block(raw)
    header = decode_header(header_bytes)
    try:
        txs = unpack_bounded(body, what="block body", max_bytes=MAX_BLOCK_BYTES, max_array_len=MAX_BLOCK_TXS)
    except CodecError as exc:
        raise BlockDecodeError(str(exc)) from exc
    if type(txs) is not list or any(type(t) is not bytes for t in txs):
        raise BlockDecodeError("a block body is an array of transactions as bin")
    if msgpack.packb(txs, use_bin_type=True) != body:
        raise BlockDecodeError("the block body's encoding is not canonical")
    if len(txs) != header.tx_count:
        raise BlockDecodeError(f"the body holds {len(txs)} transactions; the header says {header.tx_count}")
    if rfc6962.root(txs) != header.tx_root:
        raise BlockDecodeError("the body's transactions are not the ones the header's tx_root names")
    return Block(header, tuple(txs))
