"""Reconnect delays: exponential backoff with jitter.

Jitter spreads the redials of validators that lost a peer at the same moment
(the peer restarted), so they do not all hit it in the same instant.  The
random source is injected so tests replay exact delays.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random) -> None:
        if not 0 < initial_s <= maximum_s:
            raise ValueError("need 0 < initial_s <= maximum_s")
        self._initial = initial_s
        self._maximum = maximum_s
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt: half fixed, half random ("equal jitter")."""
        ceiling = min(self._maximum, self._initial * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Called once a link is authenticated: the next loss starts from the initial delay."""
        self._attempt = 0
