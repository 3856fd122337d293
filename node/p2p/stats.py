"""Counters for the node's /metrics: what crossed the links and what was refused."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from node.p2p.handshake import Refusal


@dataclass(slots=True)
class NetworkStats:
    """Monotonic counters; read by the metrics exporter, written only by the network."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    drops: int = 0
    bad_frames: int = 0
    oversized_frames: int = 0
    throttled: int = 0
    flood_disconnects: int = 0
    superseded: int = 0
    handler_errors: int = 0
    unsolicited_responses: int = 0
    observer_consensus: int = 0  # proposals and votes an observer's link sent: dropped
    # Keyed by Refusal only, so the number of keys is bounded.
    refusals: Counter[Refusal] = field(default_factory=Counter)

    def refuse(self, reason: Refusal) -> None:
        self.refusals[reason] += 1

    def snapshot(self) -> dict[str, int]:
        flat = {name: getattr(self, name) for name in self.__slots__ if name != "refusals"}
        flat.update({f"refusals_{reason.value}": self.refusals[reason] for reason in Refusal})
        return flat
