"""The simulator's parts on their own: network model, memo verifier, Byzantine
rewrites and the checkers (which must be able to fail)."""

from __future__ import annotations

import random

import pytest

from consensus.certificate import CommitCertificate
from consensus.messages import MessageType, Proposal, Vote, signing_bytes, value_id
from consensus.sim.byzantine import (
    SPAM_ROUNDS,
    ByzantineContext,
    Collude,
    CollusionPlan,
    DoubleVote,
    Equivocate,
    ForgedLock,
    FutureSpam,
    Invalid,
    Silent,
    is_valid_value,
    make_strategy,
)
from consensus.sim.checkers import (
    CommitRecord,
    SignedRecord,
    check_agreement,
    check_certificates,
    check_liveness,
    check_no_equivocation,
    check_validity,
)
from consensus.sim.crypto import MemoVerifier, SimSigner
from consensus.sim.network import Network, NetworkConfig, Partition
from consensus.sim.scenario import Scenario, draw_plan
from consensus.validators import Validator, ValidatorSet

CHAIN = "somnode-sim"


# ---- network


def test_no_loss_and_bounded_delay_after_gst() -> None:
    config = NetworkConfig(gst_ms=1000, delta_ms=20, max_delay_ms=500, loss=0.9, duplicate=0.0)
    network = Network(config, random.Random(7))
    for now in range(1000, 3000, 7):
        arrivals = network.arrivals(0, 1, now)
        assert len(arrivals) == 1
        assert now < arrivals[0] <= now + 20


def test_loss_before_gst_and_arrival_by_gst_plus_delta() -> None:
    config = NetworkConfig(gst_ms=1000, delta_ms=20, max_delay_ms=5000, loss=0.5, duplicate=0.0)
    network = Network(config, random.Random(3))
    lost = 0
    for now in range(0, 1000, 5):
        arrivals = network.arrivals(0, 1, now)
        lost += not arrivals
        for arrival in arrivals:
            assert now < arrival <= 1020
    assert 40 < lost < 160  # about half of 200


def test_partition_cuts_only_across_groups_and_only_while_active() -> None:
    partition = Partition((frozenset({0, 1}), frozenset({2, 3})), start_ms=100, end_ms=400)
    config = NetworkConfig(gst_ms=500, delta_ms=10, max_delay_ms=50, partition=partition)
    network = Network(config, random.Random(1))
    assert network.arrivals(0, 2, 200) == []
    assert network.arrivals(3, 1, 399) == []
    assert len(network.arrivals(0, 1, 200)) == 1
    assert len(network.arrivals(0, 2, 99)) == 1
    assert len(network.arrivals(0, 2, 400)) == 1


def test_partition_must_heal_by_gst() -> None:
    with pytest.raises(ValueError):
        NetworkConfig(gst_ms=100, delta_ms=10, max_delay_ms=50,
                      partition=Partition((frozenset({0}), frozenset({1})), 0, 200))


def test_duplicates_are_delivered_twice() -> None:
    config = NetworkConfig(gst_ms=0, delta_ms=10, max_delay_ms=10, duplicate=1.0)
    assert len(Network(config, random.Random(0)).arrivals(0, 1, 5)) == 2


def test_same_seed_same_plan_and_different_seeds_differ() -> None:
    scenario = Scenario(seed=42, validators=7, byzantine=2, crashes=True, partition=True, loss=0.1)
    assert draw_plan(scenario) == draw_plan(scenario)
    plans = {repr(draw_plan(Scenario(seed=s, validators=7, byzantine=2, crashes=True))) for s in range(20)}
    assert len(plans) > 15


def test_plan_never_crashes_a_byzantine_validator() -> None:
    for seed in range(50):
        plan = draw_plan(Scenario(seed=seed, validators=4, byzantine=1, crashes=True))
        assert plan.crashes
        assert all(c.validator not in plan.byzantine for c in plan.crashes)


def test_weighted_plans_keep_byzantine_power_under_a_third() -> None:
    for seed in range(300):
        for n in (4, 7, 10):
            plan = draw_plan(Scenario(seed=seed, validators=n, byzantine=(n - 1) // 3, weighted=True))
            assert len(plan.byzantine) == (n - 1) // 3
            assert 3 * sum(plan.powers[i] for i in plan.byzantine) < sum(plan.powers)
    assert len({draw_plan(Scenario(seed=s, validators=7, weighted=True)).powers for s in range(20)}) > 15


def test_replay_command_names_every_option() -> None:
    command = Scenario(seed=9, validators=7, byzantine=2, strategy="silent", crashes=True,
                       partition=True, loss=0.25, heights=4, persist=False, weighted=True).command()
    for part in ("--validators 7", "--byzantine 2", "--strategy silent", "--start-seed 9", "--seeds 1",
                 "--crashes", "--partition", "--loss 0.25", "--heights 4", "--no-persist", "--weighted"):
        assert part in command


# ---- memo verifier


def test_memo_verifier_answers_like_ed25519_and_stays_bounded() -> None:
    signer = SimSigner(0)
    verifier = MemoVerifier(capacity=4)
    messages = [b"m%d" % i for i in range(10)]
    for message in messages:
        signature = signer.sign(message)
        assert verifier.verify(signer.public_key, message, signature)
        assert verifier.verify(signer.public_key, message, signature)
        assert not verifier.verify(signer.public_key, message + b"x", signature)
        assert not verifier.verify(SimSigner(1).public_key, message, signature)
    assert verifier.hits == 10
    assert len(verifier._memo) <= 4
    assert not verifier.verify(b"short", b"m", b"sig")


# ---- Byzantine rewrites


def _context(index: int = 0, peers: tuple[int, ...] = (1, 2, 3)) -> ByzantineContext:
    return ByzantineContext(index, SimSigner(index), CHAIN, peers, random.Random(index))


def _verifies(message: Proposal | Vote) -> bool:
    signer = message.proposer if isinstance(message, Proposal) else message.validator
    return MemoVerifier().verify(signer, message.signing_bytes(CHAIN), message.signature)


def _honest_vote(ctx: ByzantineContext, vid: bytes | None) -> Vote:
    return ctx.sign_vote(MessageType.PREVOTE, 1, 0, vid)


def test_double_vote_sends_two_conflicting_signed_votes_to_disjoint_halves() -> None:
    ctx = _context()
    vote = _honest_vote(ctx, value_id(b"valid:a"))
    sends = DoubleVote().outgoing(ctx, vote)
    assert len(sends) == 2
    (first, to_first), (second, to_second) = sends
    assert first.value_id != second.value_id
    assert (first.type, first.height, first.round) == (second.type, second.height, second.round)
    assert not set(to_first) & set(to_second)
    assert sorted(to_first + to_second) == [1, 2, 3]
    assert _verifies(first) and _verifies(second)


def test_equivocating_proposer_offers_two_valid_values() -> None:
    ctx = _context()
    proposal = ctx.sign_proposal(2, 1, b"valid:2:1:0:0", -1)
    sends = Equivocate().outgoing(ctx, proposal)
    values = {message.value for message, _ in sends}
    assert len(values) == 2 and all(is_valid_value(2, v) for v in values)
    assert all(_verifies(message) for message, _ in sends)


def test_invalid_strategy_proposes_and_votes_only_invalid_values() -> None:
    ctx = _context()
    [(bad, to)] = Invalid().outgoing(ctx, ctx.sign_proposal(1, 0, b"valid:1:0:0:0", -1))
    assert not is_valid_value(1, bad.value) and to == (1, 2, 3) and _verifies(bad)
    [(bad_vote, _)] = Invalid().outgoing(ctx, _honest_vote(ctx, None))
    assert bad_vote.value_id == value_id(bad.value)


def test_forged_lock_claims_a_previous_valid_round_for_a_fresh_value() -> None:
    ctx = _context()
    [(forged, to)] = ForgedLock().outgoing(ctx, ctx.sign_proposal(1, 3, b"valid:1:3:0:0", -1))
    assert forged.valid_round == 2 and forged.value != b"valid:1:3:0:0"
    assert is_valid_value(1, forged.value) and _verifies(forged) and to == (1, 2, 3)
    first_round = ctx.sign_proposal(1, 0, b"valid:1:0:0:0", -1)
    assert ForgedLock().outgoing(ctx, first_round) == [(first_round, (1, 2, 3))]


def test_future_spam_adds_signed_votes_for_later_rounds_and_the_next_height() -> None:
    ctx = _context()
    vote = ctx.sign_vote(MessageType.PRECOMMIT, 4, 2, None)
    sends = FutureSpam().outgoing(ctx, vote)
    assert sends[0] == (vote, (1, 2, 3))
    spam = [message for message, _ in sends[1:]]
    assert {(m.height, m.round) for m in spam} == {(4, 2 + k) for k in range(1, SPAM_ROUNDS + 1)} | {(5, 0)}
    assert all(_verifies(m) for m in spam)


def test_silent_sends_nothing_and_unknown_strategy_is_refused() -> None:
    ctx = _context()
    assert Silent().outgoing(ctx, _honest_vote(ctx, None)) == []
    with pytest.raises(ValueError):
        make_strategy("polite")


def test_colluders_show_each_honest_group_its_own_value() -> None:
    plan = CollusionPlan(group_a=(1,), group_b=(2,), colluders=(0, 3))
    ctx = _context(0, (1, 2, 3))
    proposal = ctx.sign_proposal(1, 0, b"valid:1:0:0:0", -1)
    sends = Collude(plan).outgoing(ctx, proposal)
    to_a = next(m for m, to in sends if 1 in to)
    to_b = next(m for m, to in sends if 2 in to)
    assert to_a.value != to_b.value
    ally = _context(3, (0, 1, 2))
    votes = Collude(plan).outgoing(ally, ally.sign_vote(MessageType.PRECOMMIT, 1, 0, None))
    by_group = {to: vote.value_id for vote, to in votes}
    assert by_group[(1, 0)] == value_id(to_a.value)
    assert by_group[(2,)] == value_id(to_b.value)


# ---- checkers


def _certificate(height: int, value: bytes, signers: list[SimSigner], round: int = 0) -> CommitCertificate:
    vid = value_id(value)
    precommits = tuple(
        Vote(MessageType.PRECOMMIT, height, round, vid, s.public_key,
             s.sign(signing_bytes(CHAIN, MessageType.PRECOMMIT, height, round, vid)))
        for s in signers
    )
    return CommitCertificate(height, round, vid, precommits)


SIGNERS = [SimSigner(i) for i in range(4)]
VALIDATORS = ValidatorSet([Validator(s.public_key, 1) for s in SIGNERS])


def _record(validator: int, height: int, value: bytes, time_ms: int = 10) -> CommitRecord:
    return CommitRecord(validator, height, value, _certificate(height, value, SIGNERS[:3]), time_ms, "consensus")


def test_agreement_checker_catches_a_split_and_ignores_byzantine_commits() -> None:
    honest = frozenset({0, 1, 2})
    same = [_record(0, 1, b"valid:x"), _record(1, 1, b"valid:x"), _record(3, 1, b"valid:y")]
    assert check_agreement(same, honest) == []
    split = [*same, _record(2, 1, b"valid:z")]
    [violation] = check_agreement(split, honest)
    assert violation.checker == "agreement" and "height 1" in violation.detail


def test_validity_checker_catches_an_invalid_commit() -> None:
    records = [_record(0, 1, b"valid:x"), _record(1, 2, b"invalid:y")]
    [violation] = check_validity(records, frozenset({0, 1}), is_valid_value)
    assert violation.checker == "validity"


def test_certificate_checker_catches_too_few_signers_and_wrong_value() -> None:
    honest = frozenset({0, 1})
    good = _record(0, 1, b"valid:x")
    weak = CommitRecord(1, 1, b"valid:x", _certificate(1, b"valid:x", SIGNERS[:2]), 10, "catch-up")
    wrong = CommitRecord(1, 2, b"valid:y", _certificate(2, b"valid:other", SIGNERS[:3]), 10, "consensus")
    assert check_certificates([good], honest, lambda height: VALIDATORS, CHAIN, MemoVerifier()) == []
    violations = check_certificates([good, weak, wrong], honest, lambda height: VALIDATORS, CHAIN,
                                    MemoVerifier())
    assert [v.checker for v in violations] == ["certificate", "certificate"]


def test_liveness_checker_catches_late_and_missing_validators() -> None:
    records = [_record(0, 3, b"valid:a", time_ms=100), _record(1, 3, b"valid:a", time_ms=900)]
    violations = check_liveness(records, frozenset({0, 1, 2}), target_height=3, deadline_ms=500)
    assert len(violations) == 2
    assert "validator 1" in violations[0].detail and "validator 2" in violations[1].detail
    assert check_liveness(records, frozenset({0}), target_height=3, deadline_ms=500) == []


def test_equivocation_checker_catches_conflicting_votes_but_not_repeats() -> None:
    ctx = _context()
    vote_a = _honest_vote(ctx, value_id(b"valid:a"))
    vote_b = _honest_vote(ctx, None)
    repeats = [SignedRecord(0, vote_a, 1), SignedRecord(0, vote_a, 2)]
    assert check_no_equivocation(repeats) == []
    [violation] = check_no_equivocation([*repeats, SignedRecord(0, vote_b, 3)])
    assert violation.checker == "equivocation" and "validator 0" in violation.detail
    proposal_a = ctx.sign_proposal(1, 0, b"valid:a", -1)
    proposal_b = ctx.sign_proposal(1, 0, b"valid:b", -1)
    assert len(check_no_equivocation([SignedRecord(0, proposal_a, 1), SignedRecord(0, proposal_b, 2)])) == 1
