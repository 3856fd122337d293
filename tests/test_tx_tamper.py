"""Any single-byte change to a signed transaction makes it invalid.

"Invalid" means what a node does with the bytes: decoding refuses them, or
the signature no longer verifies (node.core.keys.verify_signature over the signing
bytes of the decoded transaction).  Checked exhaustively (every position,
every other byte value) for a transfer (and, with SOMNODE_LONG=1, an issue
and a redeem), and at random positions for random transactions of every kind.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.keys import KeyPair, verify_signature
from node.core.transactions import decode_tx
from node.core.tx import PAYMENT_KINDS, SignedTransaction, Transaction, TxDecodeError, TxKind, signing_prefix

CHAIN_ID = "som-example"
PREFIX = signing_prefix(CHAIN_ID)
SENDER = KeyPair.from_seed(b"\x01" * 32)
RECIPIENT = KeyPair.from_seed(b"\x02" * 32).public_key


def accepted(raw: bytes) -> bool:
    """Whether a node would take ``raw`` as a validly signed transaction on CHAIN_ID."""
    try:
        signed = decode_tx(raw)
    except TxDecodeError:
        return False
    return verify_signature(*signed.verify_item(PREFIX))


def single_byte_changes(raw: bytes):
    for position in range(len(raw)):
        for value in range(256):
            if value != raw[position]:
                yield position, raw[:position] + bytes([value]) + raw[position + 1:]


EXAMPLES = {
    "transfer": Transaction(TxKind.TRANSFER, SENDER.public_key, 0, 1250, RECIPIENT, "invoice 42"),
    "issue": Transaction(TxKind.ISSUE, SENDER.public_key, 300, 2**40, RECIPIENT, "a" * 40),
    "redeem": Transaction(TxKind.REDEEM, SENDER.public_key, 2**33, 70_000, None, "ё"),
}


@pytest.mark.parametrize(
    "kind", ["transfer", pytest.param("issue", marks=pytest.mark.long), pytest.param("redeem", marks=pytest.mark.long)]
)
def test_every_single_byte_change_is_refused_exhaustively(kind):
    signed = EXAMPLES[kind].sign(SENDER, CHAIN_ID)
    assert accepted(signed.raw)
    for position, tampered in single_byte_changes(signed.raw):
        assert not accepted(tampered), f"{kind}: byte {position} changed to {tampered[position]:#04x} was accepted"


@st.composite
def signed_transactions(draw) -> SignedTransaction:
    key = KeyPair.from_seed(draw(st.binary(min_size=32, max_size=32)))
    kind = draw(st.sampled_from(sorted(PAYMENT_KINDS)))
    recipient = None if kind is TxKind.REDEEM else draw(st.binary(min_size=32, max_size=32))
    tx = Transaction(
        kind,
        key.public_key,
        draw(st.integers(min_value=0, max_value=2**64 - 1)),
        draw(st.integers(min_value=1, max_value=2**64 - 1)),
        recipient,
        draw(st.text(max_size=60)),
    )
    return tx.sign(key, CHAIN_ID)


@given(signed_transactions(), st.data())
def test_random_single_byte_change_is_refused(signed, data):
    assert accepted(signed.raw)
    position = data.draw(st.integers(min_value=0, max_value=len(signed.raw) - 1), label="position")
    other_values = st.integers(min_value=0, max_value=255).filter(lambda v: v != signed.raw[position])
    value = data.draw(other_values, label="value")
    tampered = signed.raw[:position] + bytes([value]) + signed.raw[position + 1:]
    assert not accepted(tampered)


@given(signed_transactions(), st.data())
def test_inserting_or_deleting_one_byte_is_refused(signed, data):
    position = data.draw(st.integers(min_value=0, max_value=len(signed.raw)), label="position")
    value = data.draw(st.integers(min_value=0, max_value=255), label="value")
    assert not accepted(signed.raw[:position] + bytes([value]) + signed.raw[position:])
    if position < len(signed.raw):
        assert not accepted(signed.raw[:position] + signed.raw[position + 1:])


def test_tampering_changes_the_hash_too():
    signed = EXAMPLES["transfer"].sign(SENDER, CHAIN_ID)
    flipped = bytearray(signed.raw)
    flipped[-1] ^= 0x01
    decoded = decode_tx(bytes(flipped))
    assert decoded.hash != signed.hash
    assert not verify_signature(*decoded.verify_item(PREFIX))
