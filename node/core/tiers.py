"""Wallet tiers and the calendar the limits count by.

Every account has a tier: a maximum balance, a maximum single payment and a
maximum outgoing amount per day, all in tyiyn.  The board defines the tiers
(tier ids 0..254); an account no bank has registered is in tier 0.  Tier 255
is not a tier the board defines but the mark of an institutional account,
which the board alone designates and which no limit binds, as banks and the
issuer are never bound.

A day is a calendar day in Bishkek (UTC+6, no daylight saving time), by the
block's time: every validator counts the same day for the same block.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.core.amount import MAX_TYIYN
from node.core.names import name_error

MAX_TIER_ID = 254
INSTITUTIONAL = 255
UNREGISTERED_TIER = 0
BISHKEK_OFFSET_MS = 6 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Tier:
    id: int
    name: str
    max_balance: int
    max_payment: int
    max_daily_out: int

    def __post_init__(self) -> None:
        refusal = tier_error(self)
        if refusal is not None:
            raise ValueError(refusal)


def tier_error(tier: Tier) -> str | None:
    """Why ``tier`` is not a tier the board may define, or None."""
    if type(tier.id) is not int or not 0 <= tier.id <= MAX_TIER_ID:
        return f"a tier id is 0..{MAX_TIER_ID} ({INSTITUTIONAL} marks institutional accounts)"
    refusal = name_error(tier.name) if type(tier.name) is str else "a tier's name is text"
    if refusal is not None:
        return f"the tier's name: {refusal}"
    for what in ("max_balance", "max_payment", "max_daily_out"):
        value = getattr(tier, what)
        if type(value) is not int or not 0 <= value <= MAX_TYIYN:
            return f"{what} must be 0..2^64-1 tyiyn"
    return None


def bishkek_day(time_ms: int) -> int:
    """The calendar day in Bishkek of a block time (days since 1970-01-01 there)."""
    return (time_ms + BISHKEK_OFFSET_MS) // DAY_MS
