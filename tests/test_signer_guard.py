"""The remote signer's double-sign guard: what it recognises, and its high-water mark on disk."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.events import SigningState, Step
from consensus.messages import MessageType, signing_bytes
from node.p2p.handshake import HANDSHAKE_DOMAIN, Role
from node.signing.guard import (
    ConsensusRequest,
    HandshakeRequest,
    HighWaterMark,
    NotAllowed,
    Refused,
    StateFileError,
    classify,
)

CHAIN = "som-test"
KEY = bytes(range(32))
VALUE = bytes(32 * [7])
STEP = {MessageType.PROPOSAL: Step.PROPOSE, MessageType.PREVOTE: Step.PREVOTE, MessageType.PRECOMMIT: Step.PRECOMMIT}

points = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1),
                   st.sampled_from([MessageType.PREVOTE, MessageType.PRECOMMIT]))


def request(height: int, round: int, kind: MessageType, vid: bytes | None = VALUE) -> ConsensusRequest:
    found = classify(signing_bytes(CHAIN, kind, height, round, vid), CHAIN, KEY)
    assert isinstance(found, ConsensusRequest)
    return found


@given(point=points, vid=st.one_of(st.none(), st.binary(min_size=32, max_size=32)))
def test_every_vote_is_recognised_at_its_height_round_and_step(point, vid):
    height, round, kind = point
    assert request(height, round, kind, vid).state == SigningState(height, round, STEP[kind])


def test_proposals_and_handshakes_are_recognised_and_anything_else_is_not():
    proposal = classify(signing_bytes(CHAIN, MessageType.PROPOSAL, 3, 2, VALUE, 1), CHAIN, KEY)
    assert isinstance(proposal, ConsensusRequest) and proposal.state == SigningState(3, 2, Step.PROPOSE)
    chain = CHAIN.encode()
    other = bytes(32)
    transcript = HANDSHAKE_DOMAIN + bytes([len(chain)]) + chain + bytes(32) + KEY + other + bytes(64)
    assert isinstance(classify(transcript + bytes([Role.INITIATOR]), CHAIN, KEY), HandshakeRequest)
    refused = [
        transcript + bytes([Role.RESPONDER]),  # signing as the other side
        signing_bytes("som-other", MessageType.PREVOTE, 1, 0, VALUE),  # another chain
        signing_bytes(CHAIN, MessageType.PREVOTE, 1, 0, VALUE)[:-1],  # truncated
        signing_bytes(CHAIN, MessageType.PREVOTE, 1, 0, VALUE, 0),  # a vote with a valid round
        signing_bytes(CHAIN, MessageType.PROPOSAL, 1, 0, None),  # a proposal of nil
        b"somnode-tx-v1\x00" + bytes(100),
    ]
    for message in refused:
        with pytest.raises(NotAllowed):
            classify(message, CHAIN, KEY)


@given(first=points, second=points)
def test_the_mark_allows_only_what_is_above_it(tmp_path_factory, first, second):
    state = HighWaterMark.create(tmp_path_factory.mktemp("s") / "state.json", CHAIN)
    one, two = request(*first), request(*second)
    state.advance(one, b"s" * 64)
    if (two.state.height, two.state.round, two.state.step) > (one.state.height, one.state.round, one.state.step):
        assert state.check(two) is None
    elif two.message == one.message:
        assert state.check(two) == b"s" * 64
    else:
        with pytest.raises(Refused):
            state.check(two)


def test_the_mark_survives_a_restart_and_guards_after_it(tmp_path):
    path = tmp_path / "state.json"
    state = HighWaterMark.create(path, CHAIN)
    state.advance(request(10, 0, MessageType.PRECOMMIT), b"x" * 64)
    again = HighWaterMark.load(path, CHAIN)
    assert again.mark == state.mark
    with pytest.raises(Refused, match="at or below the high-water mark 10/0/precommit"):
        again.check(request(10, 0, MessageType.PREVOTE))
    assert again.check(request(11, 0, MessageType.PREVOTE)) is None


def test_advance_checks_again_when_the_mark_moved_after_the_check(tmp_path):
    """A superseded link's last write may land between a new request's check and its advance."""
    path = tmp_path / "state.json"
    state = HighWaterMark.create(path, CHAIN)
    late, meanwhile = request(7, 0, MessageType.PREVOTE), request(7, 0, MessageType.PRECOMMIT)
    assert state.check(late) is None
    state.advance(meanwhile, b"m" * 64)
    with pytest.raises(Refused, match="7/0/prevote, at or below the high-water mark 7/0/precommit"):
        state.advance(late, b"l" * 64)
    state.advance(meanwhile, b"m" * 64)  # the identical message again: nothing to record
    assert HighWaterMark.load(path, CHAIN).mark == state.mark
    assert state.mark is not None and state.mark.state == SigningState(7, 0, Step.PRECOMMIT)


def test_a_new_state_file_with_a_floor_bars_every_height_up_to_it(tmp_path):
    state = HighWaterMark.create(tmp_path / "state.json", CHAIN, floor=50)
    with pytest.raises(Refused):
        state.check(request(50, 2**32 - 1, MessageType.PRECOMMIT))
    assert state.check(request(51, 0, MessageType.PREVOTE)) is None


def test_a_missing_damaged_or_foreign_state_file_is_refused(tmp_path):
    path = tmp_path / "state.json"
    with pytest.raises(StateFileError, match="does not exist"):
        HighWaterMark.load(path, CHAIN)
    HighWaterMark.create(path, CHAIN)
    with pytest.raises(StateFileError, match="already exists"):
        HighWaterMark.create(path, CHAIN)
    with pytest.raises(StateFileError, match="belongs to chain 'som-test'"):
        HighWaterMark.load(path, "som-other")
    document = json.loads(path.read_text())
    document["mark"] = {"height": 1, "round": 0, "step": "sideways", "message": "", "signature": ""}
    path.write_text(json.dumps(document))
    with pytest.raises(StateFileError, match="is damaged"):
        HighWaterMark.load(path, CHAIN)
