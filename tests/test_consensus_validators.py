"""Validator set: quorum arithmetic with unequal power and the proposer schedule."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.validators import Validator, ValidatorSet

LONG = os.environ.get("SOMNODE_LONG") == "1"
EXAMPLES = int(os.environ.get("SOMNODE_CONSENSUS_EXAMPLES", "2000" if LONG else "60"))


def key(i: int) -> bytes:
    return i.to_bytes(32, "big")


def vset(*powers: int) -> ValidatorSet:
    return ValidatorSet([Validator(key(i + 1), p) for i, p in enumerate(powers)])


@pytest.mark.parametrize(("powers", "quorum", "f_plus_one"), [
    ((1, 1, 1, 1), 3, 2),
    ((1, 1, 1), 3, 2),
    ((1,), 1, 1),
    ((1, 1, 1, 10), 9, 5),
    ((3, 3, 3, 1), 7, 4),
    ((1,) * 7, 5, 3),
    ((5, 5, 5), 11, 6),
    ((2, 2, 2), 5, 3),
])
def test_quorum_and_f_plus_one(powers: tuple[int, ...], quorum: int, f_plus_one: int) -> None:
    validators = vset(*powers)
    assert (validators.total_power, validators.quorum, validators.f_plus_one) == (sum(powers), quorum, f_plus_one)


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=50))
@settings(max_examples=EXAMPLES)
def test_thresholds_are_the_smallest_powers_beyond_two_thirds_and_one_third(powers: list[int]) -> None:
    validators = vset(*powers)
    total = validators.total_power
    assert 3 * validators.quorum > 2 * total >= 3 * (validators.quorum - 1)
    assert 3 * validators.f_plus_one > total >= 3 * (validators.f_plus_one - 1)
    # Two quorums always overlap in more than f power: the heart of Tendermint's safety.
    assert 2 * validators.quorum - total >= validators.f_plus_one


def test_big_validator_alone_is_a_quorum() -> None:
    validators = vset(1, 1, 1, 10)
    assert validators.power_of(key(4)) >= validators.quorum
    assert validators.power_of(key(1)) + validators.power_of(key(2)) + validators.power_of(key(3)) < validators.quorum


@pytest.mark.parametrize("bad", [
    [],
    [Validator(key(1), 1), Validator(key(1), 2)],
    [Validator(key(1), 0)],
    [Validator(key(1), -3)],
    [Validator(key(1), True)],
    [Validator(b"short", 1)],
])
def test_rejects_malformed_sets(bad: list[Validator]) -> None:
    with pytest.raises(ValueError):
        ValidatorSet(bad)


def test_canonical_order_membership_and_power() -> None:
    validators = ValidatorSet([Validator(key(3), 2), Validator(key(1), 5), Validator(key(2), 1)])
    assert [v.public_key for v in validators.validators] == [key(1), key(2), key(3)]
    assert validators == ValidatorSet(list(reversed(validators.validators)))
    assert key(2) in validators and key(9) not in validators
    assert validators.power_of(key(1)) == 5 and validators.power_of(key(9)) == 0


@pytest.mark.parametrize("powers", [(1, 1, 1, 1), (1, 1, 1, 10), (3, 3, 3, 1), (5, 2, 7), (100, 200, 300)])
def test_proposer_schedule_is_weighted_and_exactly_fair(powers: tuple[int, ...]) -> None:
    validators = vset(*powers)
    period = validators.total_power * 7
    counts = Counter(validators.proposer(h, 0) for h in range(period))
    assert counts == {key(i + 1): power * 7 for i, power in enumerate(powers)}


def test_proposer_schedule_rotates_through_rounds_and_heights() -> None:
    validators = vset(1, 1, 1, 1)
    first_rounds = [validators.proposer(5, r) for r in range(4)]
    assert len(set(first_rounds)) == 4
    assert validators.proposer(5, 1) == validators.proposer(6, 0)


def test_heavy_validator_is_not_starved_nor_runs_in_long_streaks() -> None:
    """Smooth round-robin interleaves: power 10 of 13 never waits more than 2 turns."""
    validators = vset(1, 1, 1, 10)
    schedule = [validators.proposer(h, 0) for h in range(130)]
    gaps = [len(run) for run in "".join("x" if p == key(4) else "." for p in schedule).split("x")]
    assert max(gaps) <= 2
    assert all(schedule[i:i + 13].count(key(1)) == 1 for i in range(0, 117, 13))


@given(st.lists(st.integers(1, 20), min_size=1, max_size=12), st.integers(0, 10**12), st.integers(0, 50))
@settings(max_examples=EXAMPLES)
def test_proposer_is_deterministic_and_independent_of_query_order(
    powers: list[int], height: int, round: int
) -> None:
    fresh = vset(*powers)
    warmed = vset(*powers)
    for h in range(0, 300, 7):
        warmed.proposer(h, 1)
    assert fresh.proposer(height, round) == warmed.proposer(height, round) in fresh


@pytest.mark.parametrize("powers", [[i % 7 + 1 for i in range(64)], [1000, 999, 1, 7]])
def test_proposer_matches_a_plain_replay(powers: list[int]) -> None:
    """Replaying from checkpoints, in any query order, and wrapping at the
    period give the answer of a plain replay from all-zero priorities."""
    validators = vset(*powers)
    n = len(powers)
    period = validators.total_power
    plain = [0] * n
    expected = []
    ordered = [v.power for v in validators.validators]
    for _ in range(period + 5):
        for i in range(n):
            plain[i] += ordered[i]
        best = max(range(n), key=lambda i: (plain[i], -i))
        plain[best] -= period
        expected.append(validators.validators[best].public_key)
    steps = [0, 1, period // 2, period - 1, period, period + 4, 257, 256, 255, 3]
    for step in steps:
        assert validators.proposer(step, 0) == expected[step]
    for step in reversed(steps):
        assert vset(*powers).proposer(0, step) == expected[step]
    backwards = vset(*powers)
    for step in sorted(steps, reverse=True):
        assert backwards.proposer(step, 0) == expected[step]
    assert validators.proposer(10**15, 3) == expected[(10**15 + 3) % period]
