"""Amounts: som text to tyiyn, exactly, or refused."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.amount import (
    MAX_TYIYN,
    AmountError,
    check_tyiyn,
    format_som,
    parse_som,
    parse_tyiyn,
)


@pytest.mark.parametrize(
    ("text", "tyiyn"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("12", 1200),
        ("0", 0),
        ("0.01", 1),
        ("0.1", 10),
        ("007.05", 705),
        ("184467440737095516.15", MAX_TYIYN),
    ],
)
def test_parse_som_accepts(text, tyiyn):
    assert parse_som(text) == tyiyn


@pytest.mark.parametrize(
    "text",
    [
        "1.234", "-1", "+1", "1e3", "1E3", " 1", "1 ", "", "１", "٣", "1,000", "1_000", ".5", "5.", "1..2",
        "0x10", "nan", "inf", "1.2.3", "12.50\n", "184467440737095516.16", "99999999999999999999999",
    ],
)
def test_parse_som_rejects(text):
    with pytest.raises(AmountError):
        parse_som(text)


@pytest.mark.parametrize("value", [12.5, 1250, None, b"12.50"])
def test_parse_som_rejects_non_text(value):
    with pytest.raises(AmountError):
        parse_som(value)


@given(st.integers(min_value=0, max_value=MAX_TYIYN))
def test_format_then_parse_is_identity(tyiyn):
    text = format_som(tyiyn)
    assert parse_som(text) == tyiyn
    whole, frac = text.split(".")
    assert len(frac) == 2 and whole == str(tyiyn // 100)


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=0, max_value=99))
def test_parse_som_is_exact_or_refuses(whole, cents):
    text = f"{whole}.{cents:02d}"
    expected = whole * 100 + cents
    if expected <= MAX_TYIYN:
        assert parse_som(text) == expected
    else:
        with pytest.raises(AmountError):
            parse_som(text)


@given(st.text(max_size=12))
def test_parse_som_never_raises_anything_but_amount_error(text):
    try:
        value = parse_som(text)
    except AmountError:
        return
    assert re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", text)
    assert value == Decimal(text) * 100


@pytest.mark.parametrize(("text", "tyiyn"), [("0", 0), ("1250", 1250), (str(MAX_TYIYN), MAX_TYIYN)])
def test_parse_tyiyn_accepts(text, tyiyn):
    assert parse_tyiyn(text) == tyiyn


@pytest.mark.parametrize("text", ["", "-1", "1.0", "１", " 1", str(MAX_TYIYN + 1), "1e3"])
def test_parse_tyiyn_rejects(text):
    with pytest.raises(AmountError):
        parse_tyiyn(text)


@pytest.mark.parametrize("value", [-1, MAX_TYIYN + 1, 1.0, True, "1", None])
def test_check_tyiyn_rejects(value):
    with pytest.raises(AmountError):
        check_tyiyn(value)


@pytest.mark.parametrize("parse", [parse_som, parse_tyiyn])
def test_absurdly_long_digit_strings_are_amount_errors(parse):
    with pytest.raises(AmountError):
        parse("1" * 5000)


@pytest.mark.parametrize(("text", "says"), [
    ("99999999999999999999999", "more than the largest amount, 184467440737095516.15 som"),
    ("184467440737095516.16", "more than the largest amount, 184467440737095516.15 som"),
    ("184467440737095517", "more than the largest amount, 184467440737095516.15 som"),
    ("1" * 5000, "more than the largest amount"),
    ("1.234", "more than two decimals"),
    ("12,50", "is not a som amount"),
])
def test_a_refused_som_amount_is_explained_in_som(text, says):
    with pytest.raises(AmountError, match=re.escape(says)) as refused:
        parse_som(text)
    assert "tyiyn" not in str(refused.value).replace("1 tyiyn", "")
    assert len(str(refused.value)) < 200
