"""Equivocation: the engine reports double proposals and double votes, once."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.engine import MAX_EVIDENCE, Engine
from consensus.events import (
    EvidenceFound,
    ProposalReceived,
    ScheduleTimeout,
    Step,
    VoteReceived,
)
from consensus.evidence import Evidence, EvidenceError, make_evidence, verify_evidence
from consensus.messages import MessageType, Proposal, Vote, signing_bytes, value_id
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair, verify_signature

CHAIN = "som-test"
KEYS = [KeyPair.from_seed(bytes([i + 40]) * 32) for i in range(4)]
BY_KEY = {k.public_key: k for k in KEYS}
VALIDATORS = ValidatorSet([Validator(k.public_key, 1) for k in KEYS])
H = 3


class Ed25519:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)


def proposal(round: int, value: bytes, valid_round: int = -1, height: int = H) -> Proposal:
    key = BY_KEY[VALIDATORS.proposer(height, round)]
    data = signing_bytes(CHAIN, MessageType.PROPOSAL, height, round, value_id(value), valid_round)
    return Proposal(height, round, value, valid_round, key.public_key, key.sign(data))


def vote(kind: MessageType, round: int, value: bytes | None, key: KeyPair, height: int = H) -> Vote:
    vid = None if value is None else value_id(value)
    return Vote(kind, height, round, vid, key.public_key, key.sign(signing_bytes(CHAIN, kind, height, round, vid)))


def observer() -> Engine:
    engine = Engine(CHAIN, VALIDATORS, None, Ed25519(), lambda h, v: True, H)
    engine.start()
    return engine


def feed(engine: Engine, *messages: Proposal | Vote) -> list[Evidence]:
    found = []
    for m in messages:
        event = ProposalReceived(m) if isinstance(m, Proposal) else VoteReceived(m)
        found += [a.evidence for a in engine.handle(event) if isinstance(a, EvidenceFound)]
    return found


PAIRS = {
    "double proposal": (proposal(0, b"a"), proposal(0, b"b")),
    "proposal with another valid round": (proposal(2, b"a", valid_round=-1), proposal(2, b"a", valid_round=1)),
    "double prevote": (vote(MessageType.PREVOTE, 0, b"a", KEYS[1]), vote(MessageType.PREVOTE, 0, b"b", KEYS[1])),
    "prevote and nil prevote": (vote(MessageType.PREVOTE, 1, b"a", KEYS[2]),
                                vote(MessageType.PREVOTE, 1, None, KEYS[2])),
    "double precommit": (vote(MessageType.PRECOMMIT, 0, b"a", KEYS[3]),
                         vote(MessageType.PRECOMMIT, 0, b"b", KEYS[3])),
}


@pytest.mark.parametrize("name", PAIRS)
def test_equivocation_is_reported_once_and_verifies(name: str) -> None:
    first, second = PAIRS[name]
    engine = observer()
    found = feed(engine, first, second, second, first, second)
    assert found == [make_evidence(first, second)]
    assert engine.evidence == tuple(found)
    evidence = found[0]
    assert evidence.validator == (first.proposer if isinstance(first, Proposal) else first.validator)
    assert {evidence.first, evidence.second} == {first, second}
    verify_evidence(evidence, CHAIN, Ed25519(), VALIDATORS)


def test_evidence_does_not_depend_on_arrival_order() -> None:
    first, second = PAIRS["double prevote"]
    assert feed(observer(), first, second) == feed(observer(), second, first)


def test_duplicates_of_the_same_message_are_not_evidence() -> None:
    engine = observer()
    messages = [proposal(0, b"a"), vote(MessageType.PREVOTE, 0, b"a", KEYS[0]),
                vote(MessageType.PRECOMMIT, 0, None, KEYS[1])]
    assert feed(engine, *messages, *messages, *messages) == []
    assert engine.evidence == ()


def test_different_rounds_or_types_are_not_evidence() -> None:
    engine = observer()
    messages = [vote(MessageType.PREVOTE, 0, b"a", KEYS[0]), vote(MessageType.PREVOTE, 1, b"b", KEYS[0]),
                vote(MessageType.PRECOMMIT, 0, b"b", KEYS[0])]
    assert feed(engine, *messages) == []


def test_unsigned_conflicting_message_is_not_evidence() -> None:
    first, second = PAIRS["double precommit"]
    engine = observer()
    assert feed(engine, first, dataclasses.replace(second, signature=bytes(64))) == []


def test_equivocation_at_the_next_height_is_found_after_it_starts() -> None:
    engine = observer()
    a = vote(MessageType.PREVOTE, 0, b"a", KEYS[0], height=H + 1)
    b = vote(MessageType.PREVOTE, 0, b"b", KEYS[0], height=H + 1)
    assert feed(engine, a, b) == []
    decided = proposal(0, b"decided")
    feed(engine, decided, *(vote(MessageType.PRECOMMIT, 0, b"decided", k) for k in KEYS[:3]))
    assert engine.height == H + 1
    assert [e.validator for e in engine.evidence] == [KEYS[0].public_key]


def test_stored_evidence_is_bounded() -> None:
    engine = observer()
    key = KEYS[1]
    for offset in range(MAX_EVIDENCE + 10):
        h = H + offset
        if offset:
            engine.skip_to_height(h)
        feed(engine, vote(MessageType.PREVOTE, 0, b"a", key, h), vote(MessageType.PREVOTE, 0, b"b", key, h))
    assert len(engine.evidence) == MAX_EVIDENCE


def test_verify_evidence_rejects_what_is_not_equivocation() -> None:
    a, b = PAIRS["double prevote"]
    genuine = make_evidence(a, b)
    verifier = Ed25519()
    fakes = {
        "same content": Evidence(a.validator, a, a),
        "different rounds": Evidence(a.validator, a, vote(MessageType.PREVOTE, 5, b"b", KEYS[1])),
        "another validator": Evidence(KEYS[2].public_key, a, b),
        "bad signature": dataclasses.replace(genuine, second=dataclasses.replace(genuine.second,
                                                                                 signature=bytes(64))),
        "mixed kinds": Evidence(a.validator, a, vote(MessageType.PRECOMMIT, 0, b"b", KEYS[1])),
    }
    for fake in fakes.values():
        with pytest.raises(EvidenceError):
            verify_evidence(fake, CHAIN, verifier, VALIDATORS)
    outsider = KeyPair.from_seed(b"\x55" * 32)
    with pytest.raises(EvidenceError, match="not a validator"):
        verify_evidence(make_evidence(vote(MessageType.PREVOTE, 0, b"a", outsider),
                                      vote(MessageType.PREVOTE, 0, b"b", outsider)), CHAIN, verifier, VALIDATORS)
    with pytest.raises(EvidenceError):
        make_evidence(a, a)


def test_an_equivocators_votes_each_count_for_their_own_value() -> None:
    """As in the paper, every received message counts: a validator that saw a
    Byzantine precommit for another value first still sees the quorum for v."""
    engine = observer()
    byzantine, honest = KEYS[0], KEYS[1:3]
    feed(engine, proposal(0, b"v"), vote(MessageType.PRECOMMIT, 0, b"w", byzantine),
         *(vote(MessageType.PRECOMMIT, 0, b"v", k) for k in honest))
    assert engine.height == H
    found = feed(engine, vote(MessageType.PRECOMMIT, 0, b"v", byzantine))
    assert engine.height == H + 1
    assert [e.validator for e in found] == [byzantine.public_key]


def test_an_equivocator_counts_once_towards_any_value() -> None:
    """Lines 47-48 need 2f+1 distinct validators: two precommits from one are one."""
    engine = observer()
    byzantine = KEYS[0]
    actions = []
    for message in (vote(MessageType.PRECOMMIT, 0, b"v", byzantine), vote(MessageType.PRECOMMIT, 0, b"w", byzantine),
                    vote(MessageType.PRECOMMIT, 0, None, byzantine), vote(MessageType.PRECOMMIT, 0, b"v", KEYS[1])):
        actions += engine.handle(VoteReceived(message))
    assert not any(isinstance(a, ScheduleTimeout) and a.step == Step.PRECOMMIT for a in actions)
    actions = engine.handle(VoteReceived(vote(MessageType.PRECOMMIT, 0, b"w", KEYS[2])))
    assert [a.step for a in actions if isinstance(a, ScheduleTimeout)] == [Step.PRECOMMIT]
