"""The verifier's counters, as one consistent snapshot for the node's /metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Upper bounds ("le", as in Prometheus) of the batch-size counts in VerifierStats.
BATCH_SIZE_BOUNDS: tuple[float, ...] = (1, 4, 16, 64, 256, 1024, 4096, math.inf)


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """A consistent snapshot of the verifier's counters, for the node's /metrics.

    ``signatures`` = ``cache_hits`` + ``malformed`` + ``verified`` + the ones
    still queued or in flight.  ``batch_size_le`` holds cumulative counts of
    batches (calls into libsodium's loop) per upper bound in
    ``BATCH_SIZE_BOUNDS``, ready to export as a histogram.
    """

    threads: int
    helpers: int
    helper_restarts: int
    requests: int
    signatures: int
    verified: int
    valid: int
    cache_hits: int
    malformed: int
    cache_entries: int
    batches: int
    batch_size_le: tuple[tuple[float, int], ...]
    batch_seconds_total: float
    last_batch_size: int
    last_batch_seconds: float
    queued: int
    chunks_in_flight: int
    backlog: int
    waiting_requests: int
