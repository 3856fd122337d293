"""Addresses: round trip, and no single typo is ever accepted."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from node.core.address import (
    ADDRESS_LENGTH,
    PREFIX,
    AddressError,
    decode_address,
    encode_address,
)
from node.core.keys import KeyPair

public_keys = st.binary(min_size=32, max_size=32)
# Every ASCII character plus a few look-alikes a user might paste.
REPLACEMENTS = string.printable + "ѕоmі１０ＯＩ\u00a0\u200b"


@given(public_keys)
def test_round_trip(public_key):
    address = encode_address(public_key)
    assert len(address) == ADDRESS_LENGTH == 62
    assert address.startswith(PREFIX)
    assert set(address[len(PREFIX):]) <= set(string.ascii_lowercase + "234567")
    assert decode_address(address) == public_key


@given(public_keys, st.data())
def test_any_single_character_substitution_is_rejected(public_key, data):
    address = encode_address(public_key)
    position = data.draw(st.integers(min_value=0, max_value=len(address) - 1), label="position")
    replacement = data.draw(st.sampled_from(REPLACEMENTS) | st.characters(), label="replacement")
    assume(replacement != address[position])
    typo = address[:position] + replacement + address[position + 1:]
    with pytest.raises(AddressError):
        decode_address(typo)


def test_every_substitution_of_one_address_is_rejected_exhaustively():
    address = KeyPair.from_seed(b"\x01" * 32).address
    rejected = 0
    for position in range(len(address)):
        for replacement in REPLACEMENTS:
            if replacement == address[position]:
                continue
            with pytest.raises(AddressError):
                decode_address(address[:position] + replacement + address[position + 1:])
            rejected += 1
    assert rejected > len(address) * 90


@given(public_keys, st.data())
def test_adjacent_transposition_is_rejected(public_key, data):
    address = encode_address(public_key)
    position = data.draw(st.integers(min_value=len(PREFIX), max_value=len(address) - 2))
    assume(address[position] != address[position + 1])
    swapped = address[:position] + address[position + 1] + address[position] + address[position + 2:]
    with pytest.raises(AddressError):
        decode_address(swapped)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "som1",
        KeyPair.from_seed(b"\x01" * 32).address.upper(),
        "SOM1" + KeyPair.from_seed(b"\x01" * 32).address[4:],
        KeyPair.from_seed(b"\x01" * 32).address + "a",
        KeyPair.from_seed(b"\x01" * 32).address[:-1],
        " " + KeyPair.from_seed(b"\x01" * 32).address,
        "btc1" + KeyPair.from_seed(b"\x01" * 32).address[4:],
    ],
)
def test_malformed_addresses_are_rejected(text):
    with pytest.raises(AddressError):
        decode_address(text)


@pytest.mark.parametrize("value", [None, 5, b"som1"])
def test_non_text_is_rejected(value):
    with pytest.raises(AddressError):
        decode_address(value)


@pytest.mark.parametrize("key", [b"", b"\x00" * 31, b"\x00" * 33, "a" * 32, bytearray(32)])
def test_encode_requires_a_32_byte_key(key):
    with pytest.raises(AddressError):
        encode_address(key)


def test_unused_trailing_bits_must_be_zero():
    address = KeyPair.from_seed(b"\x02" * 32).address
    alphabet = string.ascii_lowercase + "234567"
    last = alphabet.index(address[-1])
    # The last character carries 3 data bits and 2 zero padding bits.
    for padding in (1, 2, 3):
        variant = address[:-1] + alphabet[(last & ~0b11) | padding]
        with pytest.raises(AddressError):
            decode_address(variant)


ADDRESS = KeyPair.from_seed(b"\x01" * 32).address


@pytest.mark.parametrize("text, says", [
    (ADDRESS.upper(), f"addresses are written in lowercase ({ADDRESS})"),
    ("SOM1" + ADDRESS[4:], f"addresses are written in lowercase ({ADDRESS})"),
    (ADDRESS[:10].upper() + "X" + ADDRESS[11:], "addresses are written in lowercase"),
    (ADDRESS[:-1], "is 61 characters long; an address has 62"),
    (ADDRESS + "a", "is 63 characters long; an address has 62"),
    ("btc1" + ADDRESS[4:], "does not start with 'som1'"),
    (ADDRESS[:-1] + ("a" if ADDRESS[-1] != "a" else "b"), "wrong checksum"),
])
def test_each_mistake_is_named_for_what_it_is(text, says):
    with pytest.raises(AddressError, match=re.escape(says)):
        decode_address(text)


def test_a_capitalised_address_is_not_called_the_wrong_length():
    with pytest.raises(AddressError) as refused:
        decode_address(ADDRESS.upper())
    assert "characters" not in str(refused.value)
