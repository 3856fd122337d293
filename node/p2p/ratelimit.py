"""Per-peer admission of incoming frames: a token bucket with a flood verdict.

A peer over its rate is first throttled: the link stops reading until a token
is due, which pushes back through TCP onto the sender.  An honest validator
only bursts (a new round's votes and proposal arrive together) and then falls
quiet; a peer that goes over its rate ``max_strikes`` times without ever
falling quiet is flooding and is disconnected, freeing its slot and our CPU.

"Falling quiet" means refilling half the burst.  Merely paying off the debt
is not enough: a throttled link sleeps for the debt, the sleep overshoots,
and a peer sending as fast as TCP lets it would find its bucket just above
zero every few frames, which must not wipe its record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# A frame costs one token plus one per this many bytes, so a peer's budget
# bounds its bandwidth as well as its message rate.
BYTES_PER_TOKEN = 64 * 1024
# Refill arithmetic in floats leaves crumbs like -1e-16 tokens; those are not debt.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Admission:
    delay_s: float
    flooding: bool


def frame_cost(size: int) -> float:
    return 1.0 + size / BYTES_PER_TOKEN


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, max_strikes: int, clock: Callable[[], float]) -> None:
        if rate_per_s <= 0 or burst < 1 or max_strikes < 1:
            raise ValueError("rate must be positive, burst at least 1 and max_strikes at least 1")
        self._rate = rate_per_s
        self._burst = burst
        self._max_strikes = max_strikes
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self._strikes = 0

    def admit(self, cost: float = 1.0) -> Admission:
        """Charge ``cost`` tokens; say how long to wait first and whether the peer is flooding."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= self._burst / 2:
            self._strikes = 0
        self._tokens -= cost
        if self._tokens > -_EPSILON:
            return Admission(0.0, False)
        self._strikes += 1
        return Admission(-self._tokens / self._rate, self._strikes > self._max_strikes)
