"""The simulated network: seeded delays, loss, duplication and partitions.

The model is partial synchrony as the Tendermint paper assumes it.  Before the
global stabilisation time (GST) a message may be delayed by up to
``max_delay_ms``, lost, duplicated, or cut off by a partition; delivery order
follows from the random delays, so reordering comes for free.  From GST on the
partition has healed, nothing is lost, and every message arrives within
``delta_ms``.  A message still in flight at GST arrives by GST + ``delta_ms``,
as a TCP connection that reconnects at GST would deliver it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Partition:
    """Validators in different groups cannot reach each other during [start, end)."""

    groups: tuple[frozenset[int], ...]
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.start_ms > self.end_ms:
            raise ValueError("a partition must end after it starts")
        seen: set[int] = set()
        for group in self.groups:
            if seen & group:
                raise ValueError("partition groups must be disjoint")
            seen |= group

    def separates(self, src: int, dst: int, now_ms: int) -> bool:
        if not self.start_ms <= now_ms < self.end_ms:
            return False
        for group in self.groups:
            if src in group:
                return dst not in group
        return False


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    gst_ms: int
    delta_ms: int
    max_delay_ms: int
    loss: float = 0.0
    duplicate: float = 0.0
    partition: Partition | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0 or not 0.0 <= self.duplicate <= 1.0:
            raise ValueError("loss and duplicate are probabilities")
        if self.delta_ms < 1 or self.max_delay_ms < self.delta_ms:
            raise ValueError("need 1 <= delta_ms <= max_delay_ms")
        if self.partition is not None and self.partition.end_ms > self.gst_ms:
            raise ValueError("a partition must heal by GST")


class Network:
    """Decides when (if ever) each copy of a message arrives.

    All randomness comes from the ``random.Random`` handed in, so a seed fixes
    every delivery.
    """

    __slots__ = ("config", "_rng", "sent", "lost")

    def __init__(self, config: NetworkConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self.sent = 0
        self.lost = 0

    def arrivals(self, src: int, dst: int, now_ms: int) -> list[int]:
        """Arrival times of the copies of one message from ``src`` to ``dst``."""
        self.sent += 1
        config = self.config
        if config.partition is not None and config.partition.separates(src, dst, now_ms):
            self.lost += 1
            return []
        if now_ms < config.gst_ms and config.loss and self._rng.random() < config.loss:
            self.lost += 1
            return []
        times = [self._arrival(now_ms)]
        if config.duplicate and self._rng.random() < config.duplicate:
            times.append(self._arrival(now_ms))
        return times

    def _arrival(self, now_ms: int) -> int:
        config = self.config
        if now_ms >= config.gst_ms:
            return now_ms + self._rng.randint(1, config.delta_ms)
        arrival = now_ms + self._rng.randint(1, config.max_delay_ms)
        latest = config.gst_ms + config.delta_ms
        return min(arrival, latest)
