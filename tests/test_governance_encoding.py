"""Governance transactions: every action round-trips through its encoding, and any changed byte is refused.

"Refused" is what a node does with the bytes: decoding fails, or one of the
signatures they carry (the approvals, a rotation's proof) no longer verifies.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.actions import (
    MAX_BOARD_MEMBERS,
    MAX_ORDER_NUMBER_CHARS,
    AddBank,
    DefineTier,
    Freeze,
    OrderReference,
    RemoveBank,
    ReplaceIssuer,
    RotateValidatorKey,
    Scope,
    Seize,
    SetBoard,
    SetValidator,
    SetWallet,
    Unfreeze,
    proof_bytes,
)
from node.core.amount import MAX_TYIYN
from node.core.genesis import MAX_TOTAL_POWER
from node.core.governance import GovernanceTransaction, SignedGovernance, decode_unsigned
from node.core.keys import KeyPair, verify_signature
from node.core.names import name_error
from node.core.tiers import INSTITUTIONAL, MAX_TIER_ID, Tier
from node.core.transactions import decode_tx
from node.core.tx import TxDecodeCode, TxDecodeError, pack

CHAIN_ID = "som-example"
KEYS = tuple(KeyPair.from_seed(hashlib.sha256(b"governance %d" % n).digest()) for n in range(6))

keys32 = st.binary(min_size=32, max_size=32)
signers = st.lists(st.sampled_from(KEYS), min_size=1, max_size=len(KEYS), unique_by=lambda key: key.public_key)


@st.composite
def rotations(draw) -> RotateValidatorKey:
    old, new = draw(keys32), draw(st.sampled_from(KEYS))
    if old == new.public_key:
        old = bytes(32)
    return RotateValidatorKey(old, new.public_key, new.sign(proof_bytes(CHAIN_ID, old, new.public_key)))


names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.characters(min_codepoint=0x400,
                                                                                    max_codepoint=0x4FF),
                min_size=1, max_size=40).filter(lambda name: name_error(name) is None)
tyiyn = st.integers(0, MAX_TYIYN)
references = st.builds(
    OrderReference, names, names.filter(lambda number: len(number) <= MAX_ORDER_NUMBER_CHARS),
    st.dates().map(lambda day: day.isoformat()).filter(lambda day: len(day) == 10), keys32)
scopes = st.sampled_from(Scope)
linked = st.one_of(st.just(b""), keys32)


@st.composite
def seizures(draw) -> Seize:
    account = draw(keys32)
    destination = draw(keys32.filter(lambda key: key != account))
    return Seize(account, draw(st.integers(1, MAX_TYIYN)), destination, draw(references))


@st.composite
def wallets(draw) -> SetWallet:
    wallet = draw(keys32)
    return SetWallet(wallet, draw(st.integers(0, INSTITUTIONAL)), draw(linked.filter(lambda key: key != wallet)))


actions = st.one_of(
    st.builds(AddBank, names, keys32),
    st.builds(RemoveBank, keys32),
    st.builds(SetValidator, keys32, st.integers(0, MAX_TOTAL_POWER)),
    rotations(),
    st.builds(ReplaceIssuer, keys32),
    st.lists(keys32, min_size=1, max_size=MAX_BOARD_MEMBERS, unique=True).flatmap(
        lambda members: st.builds(SetBoard, st.integers(1, len(members)), st.just(tuple(sorted(members))))),
    st.builds(DefineTier, st.builds(Tier, st.integers(0, MAX_TIER_ID), names, tyiyn, tyiyn, tyiyn)),
    wallets(),
    st.builds(Freeze, keys32, scopes, references),
    st.builds(Unfreeze, keys32, scopes, references),
    seizures(),
)
transactions = st.builds(GovernanceTransaction, st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1), actions)


def sign(tx: GovernanceTransaction, by) -> SignedGovernance:
    return tx.signed([tx.approve(key, CHAIN_ID) for key in by])


def accepted(raw: bytes) -> bool:
    try:
        stx = decode_tx(raw)
    except TxDecodeError:
        return False
    assert isinstance(stx, SignedGovernance)
    return all(verify_signature(*item) for item in stx.verify_items(CHAIN_ID))


@given(transactions, signers)
def test_a_signed_governance_transaction_round_trips(tx, by):
    stx = sign(tx, by)
    decoded = decode_tx(stx.raw)
    assert decoded == stx
    assert decoded.signers == tuple(sorted(key.public_key for key in by))
    assert accepted(stx.raw)
    assert decode_unsigned(tx.unsigned_bytes()) == tx


@given(transactions, signers, st.data())
def test_any_changed_byte_is_refused(tx, by, data):
    raw = sign(tx, by).raw
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[position]), label="value")
    assert not accepted(raw[:position] + bytes([value]) + raw[position + 1:])


def test_every_single_byte_change_of_a_rotation_is_refused_exhaustively():
    old, new = KEYS[0], KEYS[1]
    action = RotateValidatorKey(old.public_key, new.public_key,
                                new.sign(proof_bytes(CHAIN_ID, old.public_key, new.public_key)))
    raw = sign(GovernanceTransaction(7, 1_000, action), [old]).raw
    assert accepted(raw)
    for position in range(len(raw)):
        for value in range(256):
            if value != raw[position]:
                tampered = raw[:position] + bytes([value]) + raw[position + 1:]
                assert not accepted(tampered), f"byte {position} changed to {value:#04x} was accepted"


def test_approvals_out_of_order_or_twice_are_refused():
    tx = GovernanceTransaction(0, 10, RemoveBank(bytes(32)))
    stx = sign(tx, KEYS[:2])
    swapped = pack(tx.fields() + [[list(pair) for pair in reversed(stx.approvals)]])
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(swapped)
    assert refused.value.code is TxDecodeCode.NON_CANONICAL
    twice = pack(tx.fields() + [[list(stx.approvals[0])] * 2])
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(twice)
    assert refused.value.code is TxDecodeCode.DUPLICATE_SIGNER
    with pytest.raises(TxDecodeError) as refused:
        tx.signed([stx.approvals[0], stx.approvals[0]])
    assert refused.value.code is TxDecodeCode.DUPLICATE_SIGNER


@pytest.mark.parametrize(("action", "code"), [
    ([99, b"x"], TxDecodeCode.UNKNOWN_ACTION),
    ([3, bytes(32)], TxDecodeCode.BAD_FIELD_COUNT),
    ([3, bytes(31), 1], TxDecodeCode.BAD_FIELD),
    ([3, bytes(32), MAX_TOTAL_POWER + 1], TxDecodeCode.BAD_FIELD),
    ([1, "", bytes(32)], TxDecodeCode.BAD_FIELD),
    ([1, "a\nb", bytes(32)], TxDecodeCode.BAD_FIELD),
    ([4, bytes(32), bytes(32), bytes(64)], TxDecodeCode.BAD_FIELD),
    ([6, 3, [bytes(32), b"\x01" * 32]], TxDecodeCode.BAD_FIELD),
    ([6, 1, [b"\x01" * 32, bytes(32)]], TxDecodeCode.NON_CANONICAL),
    ([6, 1, []], TxDecodeCode.BAD_FIELD),
])
def test_malformed_actions_are_refused_with_their_code(action, code):
    raw = pack([1, 4, 0, 10, action, [[KEYS[0].public_key, bytes(64)]]])
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(raw)
    assert refused.value.code is code


def test_a_transaction_without_approvals_is_refused():
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(pack([1, 4, 0, 10, [2, bytes(32)], []]))
    assert refused.value.code is TxDecodeCode.BAD_FIELD


@pytest.mark.parametrize("name", ["Айыл Банк", "Бакай Банк «Өнүгүү»", "KICB", "Банк № 1 – Ош", "Crédit Agricole"])
def test_bank_names_in_kyrgyz_russian_and_latin_are_names(name):
    assert name_error(name) is None


@pytest.mark.parametrize("name", ["", " Bank", "Bank ", "a\tb", "a\nb", "Bank \u200b", "Bank 🏦", "x" * 101,
                                  "Bank\u00a0One", "\u0600"])
def test_other_text_is_not_a_name(name):
    assert name_error(name) is not None
