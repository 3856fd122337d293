"""Each upon-rule of Algorithm 1 (arXiv:1807.04938), driven in one engine.

Four validators of power 1: a quorum (2f+1) is 3, f+1 is 2.  Every message
fed in is really signed with Ed25519, and every action list is checked for the
persist-before-broadcast invariant.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.certificate import verify_certificate
from consensus.engine import Engine, TimeoutConfig
from consensus.events import (
    Broadcast,
    Commit,
    PersistSigningState,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    SigningState,
    Step,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.messages import MessageType, Proposal, Vote, signing_bytes, value_id
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair, verify_signature

LONG = os.environ.get("SOMNODE_LONG") == "1"
EXAMPLES = int(os.environ.get("SOMNODE_CONSENSUS_EXAMPLES", "2000" if LONG else "100"))
CHAIN = "som-test"
KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
BY_KEY = {k.public_key: k for k in KEYS}
VALIDATORS = ValidatorSet([Validator(k.public_key, 1) for k in KEYS])
H = 1
V = b"block v"
W = b"block w"
PREVOTE, PRECOMMIT = MessageType.PREVOTE, MessageType.PRECOMMIT


class Ed25519:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)


def proposer_key(height: int, round: int) -> KeyPair:
    return BY_KEY[VALIDATORS.proposer(height, round)]


def others(me: KeyPair) -> list[KeyPair]:
    return [k for k in KEYS if k.public_key != me.public_key]


def sign_proposal(height: int, round: int, value: bytes, valid_round: int = -1,
                  key: KeyPair | None = None) -> Proposal:
    key = key or proposer_key(height, round)
    data = signing_bytes(CHAIN, MessageType.PROPOSAL, height, round, value_id(value), valid_round)
    return Proposal(height, round, value, valid_round, key.public_key, key.sign(data))


def sign_vote(kind: MessageType, height: int, round: int, value: bytes | None, key: KeyPair) -> Vote:
    vid = None if value is None else value_id(value)
    return Vote(kind, height, round, vid, key.public_key, key.sign(signing_bytes(CHAIN, kind, height, round, vid)))


class Harness:
    """One engine plus helpers that feed it signed messages and check invariants."""

    def __init__(self, me: KeyPair | None, *, valid=lambda h, v: True, height: int = H,
                 signing_state: SigningState | None = None) -> None:
        self.me = me
        self.engine = Engine(CHAIN, VALIDATORS, me, Ed25519(), valid, height, signing_state, TimeoutConfig())
        self.last_state = signing_state

    def check(self, actions: list) -> list:
        for i, action in enumerate(actions):
            if isinstance(action, Broadcast):
                persisted = actions[i - 1]
                assert isinstance(persisted, PersistSigningState)
                message = action.message
                step = Step.PROPOSE if isinstance(message, Proposal) else Step(int(message.type) - 1)
                assert persisted.state == SigningState(message.height, message.round, step)
                assert self.last_state is None or self.last_state.allows(message.height, message.round, step)
                self.last_state = persisted.state
        return actions

    def start(self) -> list:
        return self.check(self.engine.start())

    def feed(self, *messages: Proposal | Vote) -> list:
        actions: list = []
        for m in messages:
            event = ProposalReceived(m) if isinstance(m, Proposal) else VoteReceived(m)
            actions += self.check(self.engine.handle(event))
        return actions

    def event(self, event) -> list:
        return self.check(self.engine.handle(event))

    def votes(self, kind: MessageType, round: int, value: bytes | None, count: int, height: int = H) -> list:
        """``count`` votes from validators other than this engine's."""
        voters = others(self.me) if self.me else KEYS
        return self.feed(*[sign_vote(kind, height, round, value, k) for k in voters[:count]])


def sent(actions: list) -> list:
    return [a.message for a in actions if isinstance(a, Broadcast)]


def sent_votes(actions: list, kind: MessageType) -> list[bytes | None]:
    return [m.value_id for m in sent(actions) if isinstance(m, Vote) and m.type == kind]


def timeouts(actions: list) -> list[ScheduleTimeout]:
    return [a for a in actions if isinstance(a, ScheduleTimeout)]


def not_proposer(height: int, *rounds: int) -> KeyPair:
    excluded = {VALIDATORS.proposer(height, r) for r in rounds}
    return next(k for k in KEYS if k.public_key not in excluded)


@pytest.fixture
def follower() -> Harness:
    """A validator that is not the proposer of rounds 0-2 at height H."""
    h = Harness(not_proposer(H, 0, 1, 2))
    assert timeouts(h.start()) == [ScheduleTimeout(Step.PROPOSE, H, 0, 1000)]
    return h


def lock_on(h: Harness, value: bytes, round: int) -> None:
    """Drive ``h`` at ``round`` to lock on ``value`` (lines 22-27 then 36-43)."""
    assert h.engine.round == round
    h.feed(sign_proposal(H, round, value))
    h.votes(PREVOTE, round, value, 3)
    assert h.engine.locked_value == value and h.engine.locked_round == round


def next_round(h: Harness) -> list:
    """OnTimeoutPrecommit for the current round (lines 65-67)."""
    return h.event(TimeoutFired(Step.PRECOMMIT, H, h.engine.round))


# ---- lines 11-21: StartRound


def test_start_round_as_proposer_requests_a_value_and_proposes_it() -> None:
    h = Harness(proposer_key(H, 0))
    assert h.start() == [RequestValue(H, 0)]
    actions = h.event(ValueReady(H, 0, V))
    proposal, prevote = sent(actions)
    assert isinstance(proposal, Proposal)
    assert (proposal.height, proposal.round, proposal.value, proposal.valid_round) == (H, 0, V, -1)
    assert verify_signature(proposal.proposer, proposal.signing_bytes(CHAIN), proposal.signature)
    # The engine counts its own proposal and prevotes for it (lines 22-27).
    assert prevote.type == PREVOTE and prevote.value_id == value_id(V)


def test_start_round_as_follower_schedules_timeout_propose(follower: Harness) -> None:
    assert follower.engine.step == Step.PROPOSE and follower.engine.round == 0


def test_value_ready_for_another_round_is_ignored() -> None:
    h = Harness(proposer_key(H, 0))
    h.start()
    assert h.event(ValueReady(H, 1, V)) == []
    assert h.event(ValueReady(H + 1, 0, V)) == []


def test_start_round_proposes_valid_value_without_asking() -> None:
    """Lines 15-16: a proposer with a validValue re-proposes it with its validRound."""
    me = proposer_key(H, 1)
    assert me.public_key != VALIDATORS.proposer(H, 0)
    h = Harness(me)
    h.start()
    lock_on(h, V, 0)
    actions = next_round(h)
    assert not any(isinstance(a, RequestValue) for a in actions)
    proposal = sent(actions)[0]
    assert isinstance(proposal, Proposal)
    assert (proposal.round, proposal.value, proposal.valid_round) == (1, V, 0)


def test_observer_never_signs() -> None:
    h = Harness(None)
    h.start()
    actions = h.feed(sign_proposal(H, 0, V))
    actions += h.votes(PREVOTE, 0, V, 3) + h.votes(PRECOMMIT, 0, V, 3)
    assert sent(actions) == []
    assert any(isinstance(a, Commit) for a in actions)


def test_key_outside_the_validator_set_only_observes() -> None:
    h = Harness(KeyPair.from_seed(b"\x42" * 32))
    actions = h.start() + h.feed(sign_proposal(H, 0, V)) + h.votes(PREVOTE, 0, V, 3) + h.votes(PRECOMMIT, 0, V, 3)
    assert sent(actions) == []
    assert [a.value for a in actions if isinstance(a, Commit)] == [V]


# ---- lines 22-27


def test_valid_proposal_gets_a_prevote(follower: Harness) -> None:
    actions = follower.feed(sign_proposal(H, 0, V))
    assert sent_votes(actions, PREVOTE) == [value_id(V)]
    assert follower.engine.step == Step.PREVOTE


def test_invalid_proposal_gets_a_nil_prevote() -> None:
    h = Harness(not_proposer(H, 0), valid=lambda height, value: value != V)
    h.start()
    assert sent_votes(h.feed(sign_proposal(H, 0, V)), PREVOTE) == [None]


def test_locked_validator_prevotes_nil_for_another_value(follower: Harness) -> None:
    lock_on(follower, V, 0)
    next_round(follower)
    assert sent_votes(follower.feed(sign_proposal(H, 1, W)), PREVOTE) == [None]


def test_locked_validator_prevotes_its_locked_value(follower: Harness) -> None:
    lock_on(follower, V, 0)
    next_round(follower)
    assert sent_votes(follower.feed(sign_proposal(H, 1, V)), PREVOTE) == [value_id(V)]


def test_proposal_in_a_later_step_is_not_prevoted(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    assert sent_votes(follower.feed(sign_proposal(H, 0, V)), PREVOTE) == []


# ---- lines 28-33


def test_proposal_with_valid_round_waits_for_its_prevotes(follower: Harness) -> None:
    next_round(follower)
    assert sent(follower.feed(sign_proposal(H, 1, V, valid_round=0))) == []
    follower.votes(PREVOTE, 0, V, 2)
    assert follower.engine.step == Step.PROPOSE
    actions = follower.votes(PREVOTE, 0, V, 3)
    assert sent_votes(actions, PREVOTE) == [value_id(V)]


def test_valid_round_at_or_after_lock_unlocks(follower: Harness) -> None:
    lock_on(follower, W, 0)
    next_round(follower)
    follower.feed(sign_proposal(H, 1, V))  # prevote nil: locked on W
    follower.votes(PREVOTE, 1, V, 3)  # but the others saw V get a polka in round 1
    next_round(follower)
    actions = follower.feed(sign_proposal(H, 2, V, valid_round=1))
    assert sent_votes(actions, PREVOTE) == [value_id(V)]


def test_valid_round_before_lock_gets_nil(follower: Harness) -> None:
    follower.votes(PREVOTE, 0, V, 3)  # a polka for V in round 0, no proposal seen
    next_round(follower)
    lock_on(follower, W, 1)
    next_round(follower)
    actions = follower.feed(sign_proposal(H, 2, V, valid_round=0))
    assert sent_votes(actions, PREVOTE) == [None]


def test_valid_round_with_invalid_value_gets_nil() -> None:
    h = Harness(not_proposer(H, 0, 1), valid=lambda height, value: value != V)
    h.start()
    next_round(h)
    h.votes(PREVOTE, 0, V, 3)
    assert sent_votes(h.feed(sign_proposal(H, 1, V, valid_round=0)), PREVOTE) == [None]


# ---- lines 34-35


def test_quorum_of_mixed_prevotes_schedules_timeout_prevote_once(follower: Harness) -> None:
    follower.feed(sign_proposal(H, 0, V))  # our prevote for V
    voters = others(follower.me)
    actions = follower.feed(sign_vote(PREVOTE, H, 0, W, voters[0]))
    assert timeouts(actions) == []
    actions = follower.feed(sign_vote(PREVOTE, H, 0, None, voters[1]))
    assert timeouts(actions) == [ScheduleTimeout(Step.PREVOTE, H, 0, 500)]
    actions = follower.feed(sign_vote(PREVOTE, H, 0, None, voters[2]))
    assert [t for t in timeouts(actions) if t.step == Step.PREVOTE] == []


def test_timeout_prevote_grows_with_the_round(follower: Harness) -> None:
    next_round(follower)
    next_round(follower)
    follower.event(TimeoutFired(Step.PROPOSE, H, 2))
    actions = follower.votes(PREVOTE, 2, W, 3)
    assert ScheduleTimeout(Step.PREVOTE, H, 2, 500 + 2 * 250) in timeouts(actions)


# ---- lines 36-43


def test_polka_locks_and_precommits(follower: Harness) -> None:
    follower.feed(sign_proposal(H, 0, V))
    actions = follower.votes(PREVOTE, 0, V, 2)  # with our own prevote: 3 of 4
    assert sent_votes(actions, PRECOMMIT) == [value_id(V)]
    engine = follower.engine
    assert (engine.locked_value, engine.locked_round, engine.valid_value, engine.valid_round) == (V, 0, V, 0)
    assert engine.step == Step.PRECOMMIT


def test_polka_without_proposal_does_nothing_until_it_arrives(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    assert sent_votes(follower.votes(PREVOTE, 0, V, 3), PRECOMMIT) == []
    assert follower.engine.locked_round == -1
    assert sent_votes(follower.feed(sign_proposal(H, 0, V)), PRECOMMIT) == [value_id(V)]


def test_polka_after_precommit_sets_valid_value_only(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    follower.event(TimeoutFired(Step.PREVOTE, H, 0))
    assert follower.engine.step == Step.PRECOMMIT
    follower.feed(sign_proposal(H, 0, V))
    actions = follower.votes(PREVOTE, 0, V, 3)
    assert sent(actions) == []
    engine = follower.engine
    assert (engine.locked_value, engine.locked_round, engine.valid_value, engine.valid_round) == (None, -1, V, 0)


def test_polka_for_invalid_value_is_ignored() -> None:
    h = Harness(not_proposer(H, 0), valid=lambda height, value: value != V)
    h.start()
    h.feed(sign_proposal(H, 0, V))
    assert sent_votes(h.votes(PREVOTE, 0, V, 3), PRECOMMIT) == []
    assert h.engine.valid_value is None


# ---- lines 44-46


def test_nil_polka_precommits_nil(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    actions = follower.votes(PREVOTE, 0, None, 2)
    assert sent_votes(actions, PRECOMMIT) == [None]
    assert follower.engine.step == Step.PRECOMMIT


def test_nil_polka_in_propose_step_waits(follower: Harness) -> None:
    assert sent(follower.votes(PREVOTE, 0, None, 3)) == []
    assert follower.engine.step == Step.PROPOSE


# ---- lines 47-48


def test_quorum_of_mixed_precommits_schedules_timeout_precommit_once(follower: Harness) -> None:
    voters = others(follower.me)
    follower.feed(sign_vote(PRECOMMIT, H, 0, V, voters[0]), sign_vote(PRECOMMIT, H, 0, None, voters[1]))
    actions = follower.feed(sign_vote(PRECOMMIT, H, 0, W, voters[2]))
    assert timeouts(actions) == [ScheduleTimeout(Step.PRECOMMIT, H, 0, 500)]
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    actions = follower.event(TimeoutFired(Step.PREVOTE, H, 0))  # our own nil precommit: 4 of 4
    assert [t for t in timeouts(actions) if t.step == Step.PRECOMMIT] == []


# ---- lines 49-54


def test_decision_commits_with_certificate_and_starts_next_height(follower: Harness) -> None:
    follower.feed(sign_proposal(H, 0, V))
    actions = follower.votes(PREVOTE, 0, V, 3) + follower.votes(PRECOMMIT, 0, V, 3)
    commits = [a for a in actions if isinstance(a, Commit)]
    assert len(commits) == 1
    commit = commits[0]
    assert (commit.height, commit.value) == (H, V)
    verify_certificate(commit.certificate, VALIDATORS, CHAIN, Ed25519(), height=H, value_id=value_id(V))
    after = actions[actions.index(commit) + 1:]
    expected_start = (RequestValue(H + 1, 0) if VALIDATORS.proposer(H + 1, 0) == follower.me.public_key
                      else ScheduleTimeout(Step.PROPOSE, H + 1, 0, 1000))
    assert after == [expected_start]
    engine = follower.engine
    assert (engine.height, engine.round, engine.step) == (H + 1, 0, Step.PROPOSE)
    assert (engine.locked_value, engine.locked_round, engine.valid_value, engine.valid_round) == (None, -1, None, -1)


def test_decision_for_an_earlier_round(follower: Harness) -> None:
    follower.feed(sign_proposal(H, 0, V))
    next_round(follower)
    next_round(follower)
    assert follower.engine.round == 2
    actions = follower.votes(PRECOMMIT, 0, V, 3)
    assert [a.height for a in actions if isinstance(a, Commit)] == [H]


def test_precommits_without_proposal_do_not_decide(follower: Harness) -> None:
    actions = follower.votes(PRECOMMIT, 0, V, 3)
    assert not any(isinstance(a, Commit) for a in actions)
    actions = follower.feed(sign_proposal(H, 0, V))
    assert [a.value for a in actions if isinstance(a, Commit)] == [V]


def test_invalid_value_is_never_decided() -> None:
    h = Harness(not_proposer(H, 0), valid=lambda height, value: value != V)
    h.start()
    h.feed(sign_proposal(H, 0, V))
    assert not any(isinstance(a, Commit) for a in h.votes(PRECOMMIT, 0, V, 3))
    assert h.engine.height == H


def test_next_height_messages_are_replayed_after_commit(follower: Harness) -> None:
    nxt = sign_proposal(H + 1, 0, W)
    early = follower.feed(nxt, *[sign_vote(PREVOTE, H + 1, 0, W, k) for k in others(follower.me)[:2]])
    assert early == []
    follower.feed(sign_proposal(H, 0, V))
    actions = follower.votes(PREVOTE, 0, V, 3) + follower.votes(PRECOMMIT, 0, V, 3)
    assert follower.engine.height == H + 1
    # Replayed proposal + our prevote + 2 buffered prevotes: a polka, so we precommit W at once.
    assert sent_votes(actions, PRECOMMIT)[-1] == value_id(W)


# ---- lines 55-56


def test_f_plus_one_messages_of_a_higher_round_start_it(follower: Harness) -> None:
    voters = others(follower.me)
    assert follower.feed(sign_vote(PREVOTE, H, 2, None, voters[0])) == []
    actions = follower.feed(sign_vote(PRECOMMIT, H, 2, V, voters[1]))
    assert follower.engine.round == 2 and follower.engine.step == Step.PROPOSE
    assert ScheduleTimeout(Step.PROPOSE, H, 2, 1000 + 2 * 250) in actions


def test_f_messages_of_a_higher_round_do_not(follower: Harness) -> None:
    voter = others(follower.me)[0]
    follower.feed(sign_vote(PREVOTE, H, 3, None, voter), sign_vote(PRECOMMIT, H, 3, None, voter))
    assert follower.engine.round == 0


# ---- lines 57-67: timeouts


def test_timeout_propose_prevotes_nil(follower: Harness) -> None:
    actions = follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    assert sent_votes(actions, PREVOTE) == [None]
    assert follower.engine.step == Step.PREVOTE


def test_timeout_prevote_precommits_nil(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PROPOSE, H, 0))
    actions = follower.event(TimeoutFired(Step.PREVOTE, H, 0))
    assert sent_votes(actions, PRECOMMIT) == [None]
    assert follower.engine.step == Step.PRECOMMIT


def test_timeout_precommit_starts_next_round(follower: Harness) -> None:
    actions = follower.event(TimeoutFired(Step.PRECOMMIT, H, 0))
    assert follower.engine.round == 1 and follower.engine.step == Step.PROPOSE
    assert timeouts(actions) == [ScheduleTimeout(Step.PROPOSE, H, 1, 1250)]


@pytest.mark.parametrize("stale", [
    TimeoutFired(Step.PROPOSE, H, 1),
    TimeoutFired(Step.PROPOSE, H - 1, 0),
    TimeoutFired(Step.PREVOTE, H, 0),
    TimeoutFired(Step.PRECOMMIT, H + 1, 0),
])
def test_stale_timeouts_are_ignored(follower: Harness, stale: TimeoutFired) -> None:
    assert follower.event(stale) == []
    assert (follower.engine.round, follower.engine.step) == (0, Step.PROPOSE)


# ---- input hygiene


def test_messages_failing_checks_are_dropped(follower: Harness) -> None:
    stranger = KeyPair.from_seed(b"\x99" * 32)
    wrong_proposer = next(k for k in KEYS if k.public_key != VALIDATORS.proposer(H, 0))
    good = sign_proposal(H, 0, V)
    bad = [
        sign_proposal(H, 0, V, key=wrong_proposer),
        sign_proposal(H, 0, V, key=stranger),
        Proposal(H, 0, V, -1, good.proposer, bytes(64)),
        Proposal(H, 0, V, -1, good.proposer, good.signature[:10]),
        Proposal(H, 0, W, -1, good.proposer, good.signature),  # signature of another value
        Proposal(H, 0, V, 5, good.proposer, good.signature),  # valid_round beyond round
        Proposal(-1, 0, V, -1, good.proposer, good.signature),
        Proposal(H, 0, "text", -1, good.proposer, good.signature),
        sign_proposal(H - 1, 0, V),
        sign_proposal(H + 2, 0, V),
    ]
    assert follower.feed(*bad) == []
    assert follower.engine.step == Step.PROPOSE
    assert follower.event(VoteReceived("not a vote")) == []
    assert follower.event("not an event") == []
    assert follower.feed(Vote(MessageType.PROPOSAL, H, 0, None, KEYS[0].public_key, bytes(64))) == []
    assert sent_votes(follower.feed(good), PREVOTE) == [value_id(V)]


def test_looped_back_own_messages_are_harmless(follower: Harness) -> None:
    actions = follower.feed(sign_proposal(H, 0, V))
    for message in sent(actions):
        assert follower.feed(message) == []
    assert follower.engine.evidence == ()


def test_messages_before_start_count_once_started() -> None:
    h = Harness(not_proposer(H, 0))
    assert h.feed(sign_proposal(H, 0, V)) == []
    assert sent_votes(h.start(), PREVOTE) == [value_id(V)]


# ---- signing-state safety


def test_restored_engine_does_not_resign_the_same_step() -> None:
    me = not_proposer(H, 0)
    h = Harness(me, signing_state=SigningState(H, 0, Step.PREVOTE))
    h.start()
    assert sent(h.feed(sign_proposal(H, 0, V))) == []  # had prevoted before the crash
    actions = h.votes(PREVOTE, 0, V, 3)
    assert sent_votes(actions, PRECOMMIT) == [value_id(V)]  # a later step is still allowed


def test_restored_proposer_does_not_propose_again_and_waits_with_a_timeout() -> None:
    h = Harness(proposer_key(H, 0), signing_state=SigningState(H, 0, Step.PROPOSE))
    assert h.start() == [ScheduleTimeout(Step.PROPOSE, H, 0, 1000)]


def test_restored_engine_ignores_everything_up_to_a_later_state() -> None:
    h = Harness(not_proposer(H, 0, 1), signing_state=SigningState(H, 1, Step.PRECOMMIT))
    h.start()
    h.feed(sign_proposal(H, 0, V))
    actions = h.votes(PREVOTE, 0, V, 3) + h.event(TimeoutFired(Step.PRECOMMIT, H, 0))
    actions += h.feed(sign_proposal(H, 1, V)) + h.votes(PREVOTE, 1, V, 3)
    assert sent(actions) == []
    actions = h.event(TimeoutFired(Step.PRECOMMIT, H, 1)) + h.event(TimeoutFired(Step.PROPOSE, H, 2))
    assert sent_votes(actions, PREVOTE) == [None]


def test_restored_engine_relearns_its_lock_from_its_own_precommit() -> None:
    """Locked on V in round 0, crashed: once its own precommit for V comes back
    (write-ahead log replay or gossip) it is locked on V again."""
    me = not_proposer(H, 0, 1, 2)
    before = Harness(me)
    before.start()
    lock_on(before, V, 0)
    own_precommit = sign_vote(PRECOMMIT, H, 0, V, me)  # Ed25519 is deterministic: the very message it sent
    after = Harness(me, signing_state=before.engine.signing_state)
    after.start()
    after.feed(own_precommit)
    assert (after.engine.locked_round, after.engine.locked_value) == (0, None)
    after.feed(sign_proposal(H, 0, V))
    assert after.engine.locked_value == V
    next_round(after)
    assert sent_votes(after.feed(sign_proposal(H, 1, W)), PREVOTE) == [None]
    next_round(after)
    assert sent_votes(after.feed(sign_proposal(H, 2, V)), PREVOTE) == [value_id(V)]


def test_lock_is_relearned_from_a_precommit_many_rounds_ahead() -> None:
    me = not_proposer(H, 0)
    h = Harness(me, signing_state=SigningState(H, 9, Step.PRECOMMIT))
    h.start()
    for round in range(9):
        h.feed(sign_vote(PREVOTE, H, round, None, me), sign_vote(PRECOMMIT, H, round, None, me))
    h.feed(sign_vote(PREVOTE, H, 9, W, me), sign_vote(PRECOMMIT, H, 9, W, me))
    assert h.engine.locked_round == 9


def test_relearned_lock_is_the_highest_round_precommit() -> None:
    me = not_proposer(H, 0)
    h = Harness(me, signing_state=SigningState(H, 3, Step.PRECOMMIT))
    h.start()
    h.feed(sign_vote(PRECOMMIT, H, 2, W, me), sign_vote(PRECOMMIT, H, 1, V, me), sign_vote(PRECOMMIT, H, 3, None, me))
    assert h.engine.locked_round == 2
    h.feed(sign_proposal(H, 2, W))
    assert h.engine.locked_value == W


def test_restored_engine_at_a_later_height_signs_normally() -> None:
    h = Harness(not_proposer(H, 0), signing_state=SigningState(H - 1, 7, Step.PRECOMMIT))
    h.start()
    assert h.engine.locked_round == -1
    assert sent_votes(h.feed(sign_proposal(H, 0, V)), PREVOTE) == [value_id(V)]


def test_skip_to_height_restarts_at_round_zero(follower: Harness) -> None:
    follower.event(TimeoutFired(Step.PRECOMMIT, H, 0))
    actions = follower.engine.skip_to_height(H + 5)
    assert (follower.engine.height, follower.engine.round, follower.engine.step) == (H + 5, 0, Step.PROPOSE)
    assert actions and all(isinstance(a, (ScheduleTimeout, RequestValue)) for a in actions)
    assert follower.engine.skip_to_height(H) == []


# ---- thresholds are voting power, not head counts


def test_thresholds_weigh_voting_power() -> None:
    """Powers 1, 1, 1, 10: the heavy validator alone is a quorum and f+1; the
    three light ones together are neither."""
    light, heavy = KEYS[:3], KEYS[3]
    validators = ValidatorSet([Validator(k.public_key, 1) for k in light] + [Validator(heavy.public_key, 10)])
    engine = Engine(CHAIN, validators, None, Ed25519(), lambda h, v: True, H)
    engine.start()

    def vote(kind: MessageType, round: int, key: KeyPair, value: bytes | None = V) -> list:
        return engine.handle(VoteReceived(sign_vote(kind, H, round, value, key)))

    for key in light:
        vote(PREVOTE, 2, key)
    assert engine.round == 0  # power 3 of 13 is not f+1 (5)
    vote(PREVOTE, 2, heavy)
    assert engine.round == 2  # power 10 is
    proposer = BY_KEY[validators.proposer(H, 2)]
    data = signing_bytes(CHAIN, MessageType.PROPOSAL, H, 2, value_id(V), -1)
    engine.handle(ProposalReceived(Proposal(H, 2, V, -1, proposer.public_key, proposer.sign(data))))
    for key in light:
        assert not any(isinstance(a, Commit) for a in vote(PRECOMMIT, 2, key))
    commits = [a for a in vote(PRECOMMIT, 2, heavy) if isinstance(a, Commit)]
    assert [c.value for c in commits] == [V]
    verify_certificate(commits[0].certificate, validators, CHAIN, Ed25519(), height=H)


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.binary(max_size=70),
                 st.text(max_size=5), st.sampled_from(list(MessageType)), st.sampled_from(list(Step)))


@given(st.lists(st.one_of(
    st.builds(ProposalReceived, st.builds(Proposal, _ANY, _ANY, _ANY, _ANY, _ANY, _ANY)),
    st.builds(VoteReceived, st.builds(Vote, _ANY, _ANY, _ANY, _ANY, _ANY, _ANY)),
    st.builds(TimeoutFired, _ANY, _ANY, _ANY),
    st.builds(ValueReady, _ANY, _ANY, _ANY),
    _ANY,
), max_size=20))
@settings(max_examples=EXAMPLES)
def test_garbage_events_never_raise(events: list) -> None:
    engine = Engine(CHAIN, VALIDATORS, proposer_key(H, 0), Ed25519(), lambda h, v: True, H)
    engine.start()
    for event in events:
        engine.handle(event)
    assert engine.height == H


def test_a_value_with_a_head_is_identified_by_its_head_alone():
    """id(v) of ``u32be len(head) || head || body`` is SHA-256(head): a light client checks a certificate
    from the head; any other bytes are hashed whole, as the simulator's values are."""
    head, body = b"a header", b"the transactions"
    framed = len(head).to_bytes(4, "big") + head + body
    assert value_id(framed) == hashlib.sha256(head).digest()
    assert value_id(framed[:4] + head) == hashlib.sha256(head).digest(), "an empty body"
    for whole in (b"", b"abc", b"valid:1:0:2:0", (100).to_bytes(4, "big") + head):  # the last: a length too long
        assert value_id(whole) == hashlib.sha256(whole).digest()
