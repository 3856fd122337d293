"""The peer wire codec: every message survives a round trip, and malformed frames are refused by name."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.certificate import CommitCertificate
from consensus.messages import MessageType, Proposal, Vote
from node.core.keys import KeyPair
from node.core.tx import MAX_TX_BYTES
from node.p2p.framing import FrameType, WireError, pack_frame
from node.p2p.wire import (
    MAX_BLOCKS_PER_RESPONSE,
    BlockRequest,
    BlockResponse,
    Status,
    TxBatch,
    decode,
    encode,
    fit_blocks,
)

EXAMPLES = 5_000 if os.environ.get("SOMNODE_LONG") == "1" else 200
U64 = 2**64 - 1
U32 = 2**32 - 1
CHAIN = "som-test"

keys32 = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)
heights = st.integers(0, U64)
rounds = st.integers(0, U32)

votes = st.builds(
    Vote,
    type=st.sampled_from([MessageType.PREVOTE, MessageType.PRECOMMIT]),
    height=heights, round=rounds, value_id=st.none() | keys32, validator=keys32, signature=sigs,
)
precommits = st.builds(
    Vote, type=st.just(MessageType.PRECOMMIT),
    height=heights, round=rounds, value_id=st.none() | keys32, validator=keys32, signature=sigs,
)
proposals = rounds.flatmap(lambda r: st.builds(
    Proposal, height=heights, round=st.just(r), value=st.binary(min_size=1, max_size=2048),
    valid_round=st.integers(-1, r - 1), proposer=keys32, signature=sigs,
))
certificates = st.builds(
    CommitCertificate, height=heights, round=rounds, value_id=keys32,
    precommits=st.lists(precommits, min_size=1, max_size=5).map(tuple),
)
messages = st.one_of(
    proposals,
    votes,
    st.builds(TxBatch, st.lists(st.binary(min_size=1, max_size=512), min_size=1, max_size=20).map(tuple)),
    st.builds(BlockRequest, st.integers(0, U64), st.integers(1, 1000), st.integers(1000, U64)),
    st.builds(BlockResponse, st.integers(0, U64),
              st.lists(st.tuples(st.binary(min_size=1, max_size=256), certificates),
                       max_size=4).map(tuple)),
    st.builds(Status, heights, heights),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(messages)
def test_round_trip(message):
    assert decode(encode(message)) == message


def test_round_trip_of_really_signed_messages():
    key = KeyPair.generate()
    unsigned = Vote(MessageType.PREVOTE, 5, 2, bytes(range(32)), key.public_key, bytes(64))
    vote = Vote(unsigned.type, 5, 2, unsigned.value_id, key.public_key, key.sign(unsigned.signing_bytes(CHAIN)))
    decoded = decode(encode(vote))
    assert decoded == vote
    assert decoded.signing_bytes(CHAIN) == vote.signing_bytes(CHAIN)


def frame(kind, payload) -> bytes:
    return pack_frame(kind, payload)


VOTE_PAYLOAD = [2, 1, 0, bytes(32), bytes(32), bytes(64)]
PROPOSAL_PAYLOAD = [1, 0, b"block", -1, bytes(32), bytes(64)]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (b"\x92\x02", "malformed"),  # truncated array
        (msgpack.packb([2, VOTE_PAYLOAD]) + b"\x00", "malformed"),  # trailing bytes
        (msgpack.packb({"type": 2}), "malformed"),  # maps are never valid
        (msgpack.packb([2]), "malformed"),
        (msgpack.packb(["vote", VOTE_PAYLOAD]), "malformed"),
        (msgpack.packb([99, VOTE_PAYLOAD]), "unknown_type"),
        (frame(FrameType.HELLO, []), "unexpected_type"),
        (frame(FrameType.VOTE, VOTE_PAYLOAD[:5]), "bad_payload"),
        (frame(FrameType.VOTE, [1] + VOTE_PAYLOAD[1:]), "bad_field"),  # a proposal type in a vote
        (frame(FrameType.VOTE, VOTE_PAYLOAD[:3] + [bytes(31)] + VOTE_PAYLOAD[4:]), "bad_field"),
        (frame(FrameType.VOTE, VOTE_PAYLOAD[:4] + [bytes(33), bytes(64)]), "bad_field"),
        (frame(FrameType.VOTE, VOTE_PAYLOAD[:5] + [bytes(63)]), "bad_field"),
        (frame(FrameType.VOTE, [2, -1] + VOTE_PAYLOAD[2:]), "bad_field"),
        (frame(FrameType.VOTE, [2, 1, U32 + 1] + VOTE_PAYLOAD[3:]), "bad_field"),
        (frame(FrameType.VOTE, [2, True] + VOTE_PAYLOAD[2:]), "bad_field"),
        (frame(FrameType.PROPOSAL, PROPOSAL_PAYLOAD[:3] + [-2] + PROPOSAL_PAYLOAD[4:]), "bad_field"),
        (frame(FrameType.PROPOSAL, PROPOSAL_PAYLOAD[:3] + [0] + PROPOSAL_PAYLOAD[4:]), "bad_field"),  # not < round
        (frame(FrameType.PROPOSAL, PROPOSAL_PAYLOAD[:2] + [b""] + PROPOSAL_PAYLOAD[3:]), "bad_field"),
        (frame(FrameType.PROPOSAL, PROPOSAL_PAYLOAD[:2] + ["text"] + PROPOSAL_PAYLOAD[3:]), "bad_field"),
        (frame(FrameType.TXS, []), "bad_payload"),
        (frame(FrameType.TXS, [b"x" * (MAX_TX_BYTES + 1)]), "bad_field"),
        (frame(FrameType.TXS, [b"ok", 7]), "bad_field"),
        (frame(FrameType.BLOCK_REQUEST, [1, 0, 5]), "bad_field"),
        (frame(FrameType.BLOCK_REQUEST, [1, 6, 5]), "bad_field"),
        (frame(FrameType.BLOCK_RESPONSE, [1, [[b"block", [1, 0, bytes(32), []]]]]), "bad_payload"),
        (frame(FrameType.BLOCK_RESPONSE, [1, [[b"block", [1, 0, bytes(32), [VOTE_PAYLOAD]]]]]), "bad_field"),
        (frame(FrameType.BLOCK_RESPONSE, [1, [[b"b", [1, 0, bytes(32), [[3] + VOTE_PAYLOAD[1:]]]]]
                                          * (MAX_BLOCKS_PER_RESPONSE + 1)]), "bad_payload"),
        (frame(FrameType.STATUS, []), "bad_payload"),
        (frame(FrameType.STATUS, [1]), "bad_payload"),  # the earliest height kept is part of a status
        (frame(FrameType.STATUS, [1.5, 1]), "bad_field"),
        (frame(FrameType.STATUS, [1, -1]), "bad_field"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(data, code):
    with pytest.raises(WireError) as excinfo:
        decode(data)
    assert excinfo.value.code == code
    assert str(excinfo.value)


def test_oversized_frame_is_refused_before_parsing():
    data = encode(TxBatch((b"x" * 500,) * 4))
    with pytest.raises(WireError) as excinfo:
        decode(data, max_frame_bytes=len(data) - 1)
    assert excinfo.value.code == "too_large"
    assert decode(data, max_frame_bytes=len(data)) == TxBatch((b"x" * 500,) * 4)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_wire_error(data):
    try:
        decode(data)
    except WireError:
        pass


def test_fit_blocks_keeps_a_prefix_that_fits_one_frame():
    vote = Vote(MessageType.PRECOMMIT, 1, 0, bytes(32), bytes(32), bytes(64))
    cert = CommitCertificate(1, 0, bytes(32), (vote,))
    blocks = [(bytes([i]) * 1000, cert) for i in range(10)]
    kept = fit_blocks(blocks, max_frame_bytes=4000)
    assert 0 < len(kept) < 10
    assert list(kept) == blocks[: len(kept)]
    assert len(encode(BlockResponse(U64, kept))) <= 4000
    assert len(encode(BlockResponse(U64, tuple(blocks[: len(kept) + 1])))) > 4000
