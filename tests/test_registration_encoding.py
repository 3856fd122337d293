"""A bank's wallet registration: it round-trips through its encoding, and any changed byte is refused.

"Refused" is what a node does with the bytes: decoding fails, or the bank's
signature no longer verifies over what they say.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.keys import KeyPair, verify_signature
from node.core.registration import Registration, SignedRegistration
from node.core.tiers import INSTITUTIONAL, MAX_TIER_ID
from node.core.transactions import decode_tx
from node.core.tx import TxDecodeCode, TxDecodeError, TxKind, pack, signing_prefix

CHAIN_ID = "som-example"
BANKS = tuple(KeyPair.from_seed(hashlib.sha256(b"registering bank %d" % n).digest()) for n in range(3))
keys32 = st.binary(min_size=32, max_size=32)


@st.composite
def registrations(draw) -> tuple[KeyPair, Registration]:
    bank = draw(st.sampled_from(BANKS))
    wallet = draw(keys32.filter(lambda key: key != bank.public_key))
    linked = draw(st.one_of(st.just(b""), keys32.filter(lambda key: key != wallet)))
    tx = Registration(bank.public_key, draw(st.integers(0, 2**64 - 1)), wallet,
                      draw(st.integers(0, MAX_TIER_ID)), linked)
    return bank, tx


def accepted(raw: bytes) -> bool:
    try:
        stx = decode_tx(raw)
    except TxDecodeError:
        return False
    assert isinstance(stx, SignedRegistration)
    return verify_signature(*stx.verify_item(signing_prefix(CHAIN_ID)))


@given(registrations())
def test_a_signed_registration_round_trips(drawn):
    bank, tx = drawn
    stx = tx.sign(bank, CHAIN_ID)
    assert decode_tx(stx.raw) == stx
    assert stx.raw == pack([1, int(TxKind.REGISTER), tx.sender, tx.nonce, tx.wallet, tx.tier, tx.linked,
                            stx.signature])
    assert stx.hash == hashlib.sha256(stx.raw).digest()
    assert accepted(stx.raw)


@given(registrations(), st.data())
def test_any_changed_byte_is_refused(drawn, data):
    bank, tx = drawn
    raw = tx.sign(bank, CHAIN_ID).raw
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[position]), label="value")
    assert not accepted(raw[:position] + bytes([value]) + raw[position + 1:])


def test_a_signature_for_another_chain_is_refused():
    tx = Registration(BANKS[0].public_key, 0, BANKS[1].public_key, 1, b"")
    assert not verify_signature(*tx.sign(BANKS[0], "som-other").verify_item(signing_prefix(CHAIN_ID)))


def _fields(**changes) -> list[object]:
    values = {"sender": BANKS[0].public_key, "nonce": 3, "wallet": bytes(range(32)), "tier": 1,
              "linked": BANKS[0].public_key}
    values.update(changes)
    return [1, int(TxKind.REGISTER), values["sender"], values["nonce"], values["wallet"], values["tier"],
            values["linked"], bytes(64)]


@pytest.mark.parametrize(("fields", "code"), [
    (_fields(tier=INSTITUTIONAL), TxDecodeCode.BAD_FIELD),
    (_fields(tier=-1), TxDecodeCode.BAD_FIELD),
    (_fields(tier="1"), TxDecodeCode.BAD_FIELD),
    (_fields(wallet=BANKS[0].public_key, linked=b""), TxDecodeCode.BAD_FIELD),
    (_fields(linked=bytes(range(32))), TxDecodeCode.BAD_FIELD),
    (_fields(linked=b"\x01" * 31), TxDecodeCode.BAD_FIELD),
    (_fields(wallet=b"\x01" * 33), TxDecodeCode.BAD_FIELD),
    (_fields(nonce=-1), TxDecodeCode.BAD_FIELD),
    (_fields()[:-1], TxDecodeCode.BAD_FIELD_COUNT),
    (_fields() + [b""], TxDecodeCode.BAD_FIELD_COUNT),
    (_fields()[:-1] + [bytes(63)], TxDecodeCode.BAD_SIGNATURE),
])
def test_malformed_registrations_are_refused_with_their_code(fields, code):
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(pack(fields))
    assert refused.value.code is code, str(refused.value)


def test_a_non_canonical_integer_is_refused():
    canonical = pack(_fields())
    nonce_at = canonical.index(b"\xc4\x20" + BANKS[0].public_key) + 34
    assert canonical[nonce_at] == 3
    widened = canonical[:nonce_at] + b"\xcc\x03" + canonical[nonce_at + 1:]
    with pytest.raises(TxDecodeError) as refused:
        decode_tx(widened)
    assert refused.value.code is TxDecodeCode.NON_CANONICAL
