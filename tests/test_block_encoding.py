"""Block v2 (node/core/block.py): a header that commits to its body, and a hash over the header alone."""

from __future__ import annotations

import dataclasses
import hashlib

import msgpack
import pytest

from consensus.messages import value_id
from node.core import rfc6962
from node.core.block import (
    BlockDecodeError,
    block_hash,
    build_block,
    decode_block,
    decode_header,
    split_block,
)

TXS = [b"\x01" * 40, b"\x02" * 50, b"\x03" * 60]


def sample(txs: list[bytes] = TXS):
    return build_block(chain_id="som-test", height=7, time_ms=1_700_000_000_000, proposer=b"\x0a" * 32,
                       previous_block_hash=b"\x0b" * 32, previous_app_hash=b"\x0c" * 32,
                       previous_results_hash=b"\x0d" * 32, next_validators_hash=b"\x0e" * 32, txs=txs)


def frame(header: bytes, body: bytes) -> bytes:
    return len(header).to_bytes(4, "big") + header + body


def test_a_block_round_trips_and_its_hash_is_the_headers():
    block = sample()
    raw = block.encode()
    header, body = split_block(raw)
    assert header == block.header.encode() and body == msgpack.packb(TXS, use_bin_type=True)
    assert decode_block(raw) == block and decode_header(header) == block.header
    assert block_hash(raw) == value_id(raw) == hashlib.sha256(header).digest() == block.header.hash()
    assert block.header.tx_root == rfc6962.root(TXS) and block.header.tx_count == 3
    assert decode_block(sample([]).encode()).header.tx_root == rfc6962.EMPTY_ROOT


def test_a_body_that_is_not_the_one_the_header_names_is_refused():
    block = sample()
    header = block.header.encode()
    for txs in (TXS[:2], [*TXS, b"\x04"], [TXS[1], TXS[0], TXS[2]], [TXS[0], TXS[1], TXS[2][:-1] + b"\x00"]):
        with pytest.raises(BlockDecodeError):
            decode_block(frame(header, msgpack.packb(txs, use_bin_type=True)))
    counted = dataclasses.replace(block.header, tx_count=2)
    with pytest.raises(BlockDecodeError, match="transactions"):
        decode_block(frame(counted.encode(), msgpack.packb(TXS, use_bin_type=True)))


def test_non_canonical_or_foreign_bytes_are_refused():
    block = sample()
    raw, header = block.encode(), block.header.encode()
    fields = msgpack.unpackb(header, raw=False)
    body = msgpack.packb(TXS, use_bin_type=True)
    v1 = msgpack.packb([1, "som-test", 7, 0, b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32, TXS], use_bin_type=True)
    wide_height = header.replace(b"\x07", b"\xcc\x07", 1)  # height 7 as uint 8
    assert msgpack.unpackb(wide_height, raw=False) == fields
    bad = [
        v1,                                                             # a version 1 block
        frame(msgpack.packb([1, *fields[1:]], use_bin_type=True), body),  # version 1 in a v2 frame
        frame(wide_height, body),                                       # a wider integer format
        raw + b"\x00",                                                  # trailing bytes
        frame(header, b"\xdc\x00\x03" + body[1:]),                      # array 16 for three transactions
        raw[:3],                                                        # no length
        (10_000).to_bytes(4, "big") + raw[4:],                          # a header length past the bytes
        frame(header[:-1], header[-1:] + body),                         # the frame cuts the header short
        frame(msgpack.packb([*fields[:4], b"\x0a" * 31, *fields[5:]], use_bin_type=True), body),
    ]
    for case in bad:
        with pytest.raises(BlockDecodeError):
            decode_block(case)
