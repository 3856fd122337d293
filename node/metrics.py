"""The node's Prometheus metrics, all on one per-node registry.

Each node owns a ``CollectorRegistry`` instead of the process-wide default one,
so several validators in one process (the local testnet, the tests) each report
their own figures and never collide on metric names.  Label sets are bounded:
API routes are the router's path templates, never raw request paths.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

NAMESPACE = "somnode"

_BLOCK_INTERVAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
_BATCH_SIZE_BUCKETS = (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
_BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class NodeMetrics:
    """Metric definitions plus the small update calls the runtime makes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.height = Gauge("height", "Height of the last committed block", namespace=NAMESPACE, registry=registry)
        self.round = Gauge("round", "Consensus round at the current height", namespace=NAMESPACE, registry=registry)
        self.block_interval = Histogram(
            "block_interval_seconds", "Time between consecutive commits seen by this node",
            namespace=NAMESPACE, registry=registry, buckets=_BLOCK_INTERVAL_BUCKETS,
        )
        self.committed_txs = Counter(
            "committed_transactions", "Transactions in committed blocks", namespace=NAMESPACE, registry=registry,
        )
        self.mempool_txs = Gauge("mempool_transactions", "Transactions waiting in the mempool",
                                 namespace=NAMESPACE, registry=registry)
        self.mempool_bytes = Gauge("mempool_bytes", "Bytes of transactions waiting in the mempool",
                                   namespace=NAMESPACE, registry=registry)
        self.peers = Gauge("peers", "Connected, authenticated validator peers", namespace=NAMESPACE, registry=registry)
        self.verify_batch_size = Histogram(
            "verify_batch_size", "Signatures per verification batch",
            namespace=NAMESPACE, registry=registry, buckets=_BATCH_SIZE_BUCKETS,
        )
        self.verify_batch_seconds = Histogram(
            "verify_batch_seconds", "Wall time to verify one batch of signatures",
            namespace=NAMESPACE, registry=registry, buckets=_BATCH_SECONDS_BUCKETS,
        )
        self.verify_cache_hits = Counter(
            "verify_cache_hits", "Signatures answered from the cache of known-valid results",
            namespace=NAMESPACE, registry=registry,
        )
        self.api_requests = Counter(
            "api_requests", "Client API requests by route template and HTTP status",
            ["route", "status"], namespace=NAMESPACE, registry=registry,
        )

    def observe_commit(self, height: int, tx_count: int, interval_seconds: float | None) -> None:
        """Record a committed block; ``interval_seconds`` is None for the first commit after start."""
        assert height >= 0 and tx_count >= 0, "height and transaction count are never negative"
        self.height.set(height)
        self.committed_txs.inc(tx_count)
        if interval_seconds is not None:
            self.block_interval.observe(interval_seconds)

    def set_round(self, round: int) -> None:
        self.round.set(round)

    def set_mempool(self, txs: int, size_bytes: int) -> None:
        self.mempool_txs.set(txs)
        self.mempool_bytes.set(size_bytes)

    def set_peers(self, count: int) -> None:
        self.peers.set(count)

    def observe_verify_batch(self, size: int, seconds: float, cache_hits: int = 0) -> None:
        self.verify_batch_size.observe(size)
        self.verify_batch_seconds.observe(seconds)
        if cache_hits:
            self.verify_cache_hits.inc(cache_hits)

    def observe_api_request(self, route: str, status: int) -> None:
        self.api_requests.labels(route=route, status=str(status)).inc()
