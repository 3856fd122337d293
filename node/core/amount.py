"""Money amounts: integer tyiyn (1 som = 100 tyiyn), unsigned 64-bit.

Amounts are never floats: a user's "12.50" is parsed digit by digit, and an
input that is not exactly representable in tyiyn is refused rather than rounded,
because a silently rounded payment is a wrong payment.
"""

from __future__ import annotations

import re

TYIYN_PER_SOM = 100
MAX_TYIYN = 2**64 - 1

# 2**64 - 1 has 20 digits: longer input is out of range, and is refused before int()
# (which raises a plain ValueError beyond 4300 digits).
_MAX_DIGITS = 20
# The shape of a som amount; the number of decimals and the range are checked after it,
# so each mistake gets its own message.
_SOM_TEXT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
_MAX_WHOLE_SOM_DIGITS = len(str(MAX_TYIYN // TYIYN_PER_SOM))
_QUOTED_CHARS = 24


class AmountError(ValueError):
    """The text or number is not a valid amount of money."""


def check_tyiyn(value: object) -> int:
    """Return ``value`` if it is an int in [0, 2**64 - 1]; raise otherwise."""
    if type(value) is not int:
        raise AmountError(f"amount must be an integer number of tyiyn, got {type(value).__name__}")
    if not 0 <= value <= MAX_TYIYN:
        raise AmountError(f"amount {value} is outside 0..{MAX_TYIYN} tyiyn")
    return value


def parse_som(text: str) -> int:
    """Parse a som amount such as ``"12.50"`` or ``"3"`` into tyiyn.

    At most two decimal places; no sign, exponent, separators or spaces.  A
    refusal speaks in som, the unit the user typed.
    """
    if not isinstance(text, str):
        raise AmountError("amount must be given as text")
    match = _SOM_TEXT.fullmatch(text)
    if match is None:
        raise AmountError(
            f"{_quote(text)} is not a som amount: use digits with at most two decimals, e.g. 12.50"
        )
    frac = match["frac"] or ""
    if len(frac) > 2:
        raise AmountError(f"{_quote(text)} has more than two decimals: the smallest amount is 0.01 som (1 tyiyn)")
    whole = match["whole"].lstrip("0") or "0"
    too_long = len(whole) > _MAX_WHOLE_SOM_DIGITS  # out of range whatever the digits; int() is spared them
    tyiyn = 0 if too_long else int(whole) * TYIYN_PER_SOM + int(frac.ljust(2, "0"))
    if too_long or tyiyn > MAX_TYIYN:
        raise AmountError(f"{_quote(text)} som is more than the largest amount, {format_som(MAX_TYIYN)} som")
    return tyiyn


def _quote(text: str) -> str:
    """The user's text for a message, cut short: a pasted megabyte must not become the error."""
    return repr(text) if len(text) <= _QUOTED_CHARS else repr(text[:_QUOTED_CHARS]) + "..."


def parse_tyiyn(text: str) -> int:
    """Parse a whole number of tyiyn given as decimal digits."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise AmountError(f"{text!r} is not a whole number of tyiyn")
    if len(text) > _MAX_DIGITS:
        raise AmountError(f"{text[:24]}... is outside 0..{MAX_TYIYN} tyiyn")
    return check_tyiyn(int(text))


def format_som(tyiyn: int) -> str:
    """Format tyiyn as som with exactly two decimals: 1250 -> ``"12.50"``."""
    check_tyiyn(tyiyn)
    whole, frac = divmod(tyiyn, TYIYN_PER_SOM)
    return f"{whole}.{frac:02d}"
