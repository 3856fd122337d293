"""Transaction encoding: round trip for every kind, an independent encoder
written from docs/protocol.md §4.1 that must agree byte for byte, and every
non-canonical or malformed variant refused with its documented code."""

from __future__ import annotations

import dataclasses
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.keys import KeyPair, verify_signature
from node.core.transactions import decode_tx
from node.core.tx import (
    MAX_MEMO_BYTES,
    MAX_TX_BYTES,
    PAYMENT_KINDS,
    SignedTransaction,
    Transaction,
    TxDecodeError,
    TxKind,
    signing_prefix,
)

CHAIN_ID = "som-test"
U64 = 2**64 - 1
SENDER = KeyPair.from_seed(b"\x01" * 32)
RECIPIENT = KeyPair.from_seed(b"\x02" * 32).public_key


# --- an independent msgpack writer, straight from the format table in §4.1 ---

def uint(value: int, width: int | None = None) -> bytes:
    """Unsigned integer; ``width`` forces 0 (fixint), 1, 2, 4 or 8 bytes."""
    if width is None:
        width = next(w for w, limit in ((0, 0x7F), (1, 0xFF), (2, 0xFFFF), (4, 2**32 - 1), (8, U64)) if value <= limit)
    if width == 0:
        return bytes([value])
    return {1: b"\xcc", 2: b"\xcd", 4: b"\xce", 8: b"\xcf"}[width] + value.to_bytes(width, "big")


def text(value: str | bytes, fmt: str | None = None) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if fmt is None:
        fmt = "fix" if len(data) <= 31 else "str8" if len(data) <= 255 else "str16"
    header = {
        "fix": lambda n: bytes([0xA0 | n]),
        "str8": lambda n: b"\xd9" + bytes([n]),
        "str16": lambda n: b"\xda" + n.to_bytes(2, "big"),
        "str32": lambda n: b"\xdb" + n.to_bytes(4, "big"),
    }[fmt](len(data))
    return header + data


def binary(data: bytes, fmt: str = "bin8") -> bytes:
    size = {"bin8": 1, "bin16": 2, "bin32": 4}[fmt]
    return {"bin8": b"\xc4", "bin16": b"\xc5", "bin32": b"\xc6"}[fmt] + len(data).to_bytes(size, "big") + data


def array(items: list[bytes], fmt: str = "fix") -> bytes:
    header = bytes([0x90 | len(items)]) if fmt == "fix" else b"\xdc" + len(items).to_bytes(2, "big")
    return header + b"".join(items)


def spec_fields(signed: SignedTransaction) -> list[bytes]:
    tx = signed.tx
    fields = [uint(1), uint(int(tx.kind)), binary(tx.sender), uint(tx.nonce)]
    if tx.recipient is not None:
        fields.append(binary(tx.recipient))
    fields += [uint(tx.amount), text(tx.memo), binary(signed.signature)]
    return fields


# --- strategies ---

memos = st.text(st.characters(codec="utf-8"), max_size=80).filter(
    lambda m: len(m.encode()) <= MAX_MEMO_BYTES
) | st.sampled_from(
    ["", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "ё" * 128, "€" * 85 + "a"]
)
# Every boundary between two integer formats, plus anything in range.
u64 = st.integers(min_value=0, max_value=U64) | st.sampled_from(
    [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, U64]
)


CHAINS = [CHAIN_ID, "som-main", "ы" * 32]


@st.composite
def signed_transactions(draw) -> tuple[SignedTransaction, str]:
    """A signed transaction of any kind and the chain id it was signed for."""
    key = KeyPair.from_seed(draw(st.binary(min_size=32, max_size=32)))
    kind = draw(st.sampled_from(sorted(PAYMENT_KINDS)))
    recipient = None if kind is TxKind.REDEEM else draw(st.binary(min_size=32, max_size=32))
    amount = draw(u64.filter(lambda a: a >= 1))
    tx = Transaction(kind, key.public_key, draw(u64), amount, recipient, draw(memos))
    chain_id = draw(st.sampled_from(CHAINS))
    return tx.sign(key, chain_id), chain_id


@given(signed_transactions())
def test_decode_round_trips_every_kind(signed_on):
    signed, chain_id = signed_on
    decoded = decode_tx(signed.raw)
    assert decoded == signed
    assert len(signed.raw) <= MAX_TX_BYTES
    assert decoded.unsigned_bytes() == signed.tx.unsigned_bytes()
    assert verify_signature(*decoded.verify_item(signing_prefix(chain_id)))
    # The decoder builds its objects without the dataclass constructors; they must be the same values.
    assert hash(decoded) == hash(signed) and hash(decoded.tx) == hash(signed.tx)
    assert repr(decoded) == repr(signed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.tx.amount = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.raw = b""  # type: ignore[misc]


@given(signed_transactions())
def test_independent_encoder_from_the_spec_agrees(signed_on):
    signed, _ = signed_on
    fields = spec_fields(signed)
    assert array(fields) == signed.raw
    assert array(fields[:-1]) == signed.tx.unsigned_bytes()


@given(signed_transactions(), st.sampled_from(CHAINS))
def test_signature_is_over_the_documented_signing_bytes_of_one_chain(signed_on, other_chain):
    signed, chain_id = signed_on
    encoded = chain_id.encode()
    expected = b"somnode-tx-v1\x00" + bytes([len(encoded)]) + encoded + signed.tx.unsigned_bytes()
    assert signed.signing_bytes(chain_id) == signed.tx.signing_bytes(chain_id) == expected
    valid_elsewhere = verify_signature(signed.tx.sender, signed.signing_bytes(other_chain), signed.signature)
    assert valid_elsewhere == (other_chain == chain_id)


def test_signature_does_not_carry_over_to_another_chain():
    tx = Transaction(TxKind.TRANSFER, SENDER.public_key, 3, 1250, RECIPIENT, "x")
    signed = tx.sign(SENDER, "som-main")
    assert verify_signature(tx.sender, signed.signing_bytes("som-main"), signed.signature)
    assert not verify_signature(tx.sender, signed.signing_bytes("som-test"), signed.signature)


def test_sign_refuses_a_key_that_is_not_the_sender():
    tx = Transaction(TxKind.TRANSFER, RECIPIENT, 0, 1, SENDER.public_key)
    with pytest.raises(ValueError):
        tx.sign(SENDER, CHAIN_ID)


# --- the constructor enforces the same field rules as the decoder ---

@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (dict(kind=4), "unknown_kind"),
        (dict(sender=b"\x00" * 31), "bad_field"),
        (dict(sender="a" * 32), "bad_field"),
        (dict(nonce=-1), "bad_field"),
        (dict(nonce=2**64), "bad_field"),
        (dict(nonce=True), "bad_field"),
        (dict(amount=0), "bad_amount"),
        (dict(amount=2**64), "bad_amount"),
        (dict(amount=12.5), "bad_amount"),
        (dict(amount=True), "bad_amount"),
        (dict(recipient=None), "bad_field"),
        (dict(recipient=b"\x00" * 33), "bad_field"),
        (dict(kind=TxKind.REDEEM), "bad_field"),
        (dict(memo=b"bytes"), "bad_field"),
        (dict(memo="a" * 257), "memo_too_long"),
        (dict(memo="ё" * 129), "memo_too_long"),
    ],
)
def test_constructor_rejects_bad_fields(kwargs, code):
    values = dict(kind=TxKind.TRANSFER, sender=SENDER.public_key, nonce=0, amount=1, recipient=RECIPIENT, memo="")
    values.update(kwargs)
    with pytest.raises(TxDecodeError) as info:
        Transaction(**values)
    assert info.value.code == code


def test_memo_that_is_not_encodable_is_a_bad_field():
    with pytest.raises(TxDecodeError) as info:
        Transaction(TxKind.TRANSFER, SENDER.public_key, 0, 1, RECIPIENT, "\ud800")
    assert info.value.code == "bad_field"


# --- non-canonical and malformed encodings, each with its documented code ---

BASE = Transaction(TxKind.TRANSFER, SENDER.public_key, 5, 1250, RECIPIENT, "invoice 42").sign(SENDER, CHAIN_ID)
REDEEM = Transaction(TxKind.REDEEM, SENDER.public_key, 5, 1250, None, "").sign(SENDER, CHAIN_ID)
# Field positions in a transfer.
VERSION, KIND, SENDER_F, NONCE, RECIPIENT_F, AMOUNT, MEMO, SIGNATURE = range(8)


def replaced(index: int, encoding: bytes, base: SignedTransaction = BASE) -> bytes:
    fields = spec_fields(base)
    fields[index] = encoding
    return array(fields)


def test_the_spec_encoder_reproduces_the_base_transaction():
    assert array(spec_fields(BASE)) == BASE.raw and decode_tx(BASE.raw) == BASE
    assert array(spec_fields(REDEEM)) == REDEEM.raw and decode_tx(REDEEM.raw) == REDEEM


CASES = {
    # wider integer formats than needed
    "version as uint8": (replaced(VERSION, uint(1, 1)), "non_canonical"),
    "kind as uint16": (replaced(KIND, uint(1, 2)), "non_canonical"),
    "nonce as uint8": (replaced(NONCE, uint(5, 1)), "non_canonical"),
    "nonce as uint64": (replaced(NONCE, uint(5, 8)), "non_canonical"),
    "amount as uint32": (replaced(AMOUNT, uint(1250, 4)), "non_canonical"),
    "amount as uint64": (replaced(AMOUNT, uint(1250, 8)), "non_canonical"),
    "amount as int16": (replaced(AMOUNT, b"\xd1" + struct.pack(">h", 1250)), "non_canonical"),
    "nonce as int8": (replaced(NONCE, b"\xd0\x05"), "non_canonical"),
    # wider string / bin / array formats
    "memo as str8": (replaced(MEMO, text("invoice 42", "str8")), "non_canonical"),
    "memo as str16": (replaced(MEMO, text("invoice 42", "str16")), "non_canonical"),
    "memo as str32": (replaced(MEMO, text("invoice 42", "str32")), "non_canonical"),
    "sender as bin16": (replaced(SENDER_F, binary(SENDER.public_key, "bin16")), "non_canonical"),
    "signature as bin32": (replaced(SIGNATURE, binary(BASE.signature, "bin32")), "non_canonical"),
    "array16 header": (array(spec_fields(BASE), "array16"), "non_canonical"),
    # bin / str swaps
    "memo as bin": (replaced(MEMO, binary(b"invoice 42")), "bad_field"),
    "sender as str": (replaced(SENDER_F, text(b"a" * 32)), "bad_field"),
    "recipient as str": (replaced(RECIPIENT_F, text(b"b" * 32)), "bad_field"),
    "signature as str": (replaced(SIGNATURE, text(b"s" * 64)), "bad_signature"),
    # wrong sizes
    "sender of 31 bytes": (replaced(SENDER_F, binary(SENDER.public_key[:31])), "bad_field"),
    "recipient of 33 bytes": (replaced(RECIPIENT_F, binary(RECIPIENT + b"\x00")), "bad_field"),
    "signature of 63 bytes": (replaced(SIGNATURE, binary(BASE.signature[:63])), "bad_signature"),
    # floats, booleans, nil
    "float64 amount": (replaced(AMOUNT, b"\xcb" + struct.pack(">d", 1250.0)), "bad_amount"),
    "float32 amount": (replaced(AMOUNT, b"\xca" + struct.pack(">f", 1250.0)), "bad_amount"),
    "float nonce": (replaced(NONCE, b"\xcb" + struct.pack(">d", 5.0)), "bad_field"),
    "boolean amount": (replaced(AMOUNT, b"\xc3"), "bad_amount"),
    "boolean version": (replaced(VERSION, b"\xc3"), "bad_version"),
    "boolean kind": (replaced(KIND, b"\xc3"), "unknown_kind"),
    "nil memo": (replaced(MEMO, b"\xc0"), "bad_field"),
    "nil recipient": (replaced(RECIPIENT_F, b"\xc0"), "bad_field"),
    "float version": (replaced(VERSION, b"\xcb" + struct.pack(">d", 1.0)), "bad_version"),
    # out-of-range integers
    "zero amount": (replaced(AMOUNT, uint(0)), "bad_amount"),
    "negative amount": (replaced(AMOUNT, b"\xff"), "bad_amount"),
    "negative nonce": (replaced(NONCE, b"\xff"), "bad_field"),
    "int64 min nonce": (replaced(NONCE, b"\xd3" + struct.pack(">q", -(2**63))), "bad_field"),
    # versions and kinds
    "version 0": (replaced(VERSION, uint(0)), "bad_version"),
    "version 2": (replaced(VERSION, uint(2)), "bad_version"),
    "kind 0": (replaced(KIND, uint(0)), "unknown_kind"),
    "kind 6": (replaced(KIND, uint(6)), "unknown_kind"),
    "kind 255": (replaced(KIND, uint(255)), "unknown_kind"),
    "kind as text": (replaced(KIND, text("transfer")), "unknown_kind"),
    # extra and missing fields
    "extra field": (array(spec_fields(BASE) + [uint(0)]), "bad_field_count"),
    "missing memo": (array(spec_fields(BASE)[:MEMO] + spec_fields(BASE)[SIGNATURE:]), "bad_field_count"),
    "unsigned (no signature)": (array(spec_fields(BASE)[:-1]), "bad_field_count"),
    "redeem with recipient": (replaced(KIND, uint(3)), "bad_field_count"),
    "transfer without recipient": (
        array([uint(1), uint(1)] + spec_fields(REDEEM)[2:]), "bad_field_count"
    ),
    # memo limits and text validity
    "memo of 257 bytes": (replaced(MEMO, text("a" * 257)), "memo_too_long"),
    "memo invalid utf-8": (replaced(MEMO, text(b"\xff\xfe")), "malformed"),
    "memo overlong utf-8": (replaced(MEMO, text(b"\xc0\xaf")), "malformed"),
    # structure
    "map instead of array": (msgpack.packb({"version": 1}), "malformed"),
    "map as a field": (replaced(MEMO, b"\x81\xa1a\x01"), "malformed"),
    "extension type field": (replaced(MEMO, b"\xd4\x01\x01"), "malformed"),
    "nested array as memo": (replaced(MEMO, array([uint(1)])), "bad_field"),
    "reserved byte 0xc1": (replaced(MEMO, b"\xc1"), "malformed"),
    "trailing byte": (BASE.raw + b"\x00", "malformed"),
    "two transactions": (BASE.raw + BASE.raw, "malformed"),
    "truncated": (BASE.raw[:-1], "malformed"),
    "empty": (b"", "malformed"),
    "single integer": (b"\x01", "malformed"),
    "short array": (array([uint(1), uint(1)]), "malformed"),
    "array of 65 elements": (bytes([0xDC, 0, 65]) + bytes(65), "malformed"),
    "too large": (BASE.raw + b"\x00" * (MAX_TX_BYTES + 1 - len(BASE.raw)), "too_large"),
}


@pytest.mark.parametrize(("raw", "code"), CASES.values(), ids=list(CASES))
def test_non_canonical_and_malformed_encodings_are_rejected(raw, code):
    with pytest.raises(TxDecodeError) as info:
        decode_tx(raw)
    assert info.value.code == code, str(info.value)


@pytest.mark.parametrize("value", ["not bytes", None, 5, [BASE.raw]])
def test_non_bytes_input_is_malformed(value):
    with pytest.raises(TxDecodeError) as info:
        decode_tx(value)
    assert info.value.code == "malformed"


def test_bytearray_and_memoryview_are_accepted():
    assert decode_tx(bytearray(BASE.raw)) == BASE
    assert decode_tx(memoryview(BASE.raw)) == BASE


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_anything_but_decode_errors(raw):
    try:
        signed = decode_tx(raw)
    except TxDecodeError as exc:
        assert exc.code in {"too_large", "malformed", "bad_version", "unknown_kind", "bad_field_count",
                            "bad_signature", "bad_field", "bad_amount", "memo_too_long", "non_canonical"}
    else:
        assert signed.raw == raw
