"""The node's Prometheus metrics, all on one per-node registry.

Each node owns a ``CollectorRegistry`` instead of the process-wide default one,
so several validators in one process (the local testnet, the tests) each report
their own figures and never collide on metric names.  Label sets are bounded:
API routes are the router's path templates, never raw request paths.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from node.p2p.handshake import Refusal
from node.p2p.stats import NetworkStats
from node.verifier.stats import VerifierStats

NAMESPACE = "somnode"

# Up to the heartbeat of an idle network (30 s by default) and some way past it.
_BLOCK_INTERVAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
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
        self.mempool_gossip_dropped = Counter(
            "mempool_gossip_dropped",
            "Transactions relayed by peers and dropped unexamined because the mempool was full",
            namespace=NAMESPACE, registry=registry,
        )
        self._gossip_dropped_seen = 0
        self.peers = Gauge("peers", "Connected, authenticated validator peers", namespace=NAMESPACE, registry=registry)
        self.evidence = Counter(
            "consensus_evidence", "Equivocations detected (two conflicting signed messages from one validator)",
            namespace=NAMESPACE, registry=registry,
        )
        self.peer_messages_rejected = Counter(
            "peer_messages_rejected", "Consensus messages from peers dropped before the engine, by reason",
            ["reason"], namespace=NAMESPACE, registry=registry,
        )
        self.api_requests = Counter(
            "api_requests", "Client API requests by route template and HTTP status",
            ["route", "status"], namespace=NAMESPACE, registry=registry,
        )
        self.own_precommits = Counter(
            "own_precommits", "Commits by whether this validator's precommit is in the certificate "
            "(outcome included or missing)", ["outcome"], namespace=NAMESPACE, registry=registry,
        )
        for outcome in ("included", "missing"):  # both series exist from the start, so a rate is never absent
            self.own_precommits.labels(outcome)
        self.signatures = Counter(
            "signatures", "Signatures asked of this validator's keys (proposals, votes, handshakes), by outcome "
            "(made, or unavailable: the token or remote signer could not sign, so the message was lost)",
            ["outcome"], namespace=NAMESPACE, registry=registry,
        )
        for outcome in ("made", "unavailable"):
            self.signatures.labels(outcome)
        self.mempool_max_txs = Gauge("mempool_max_transactions", "Transactions the mempool holds at most",
                                     namespace=NAMESPACE, registry=registry)
        self.mempool_max_bytes = Gauge("mempool_max_bytes", "Bytes of transactions the mempool holds at most",
                                       namespace=NAMESPACE, registry=registry)
        self.power_connected = Gauge(
            "voting_power_connected", "Voting power of this validator and the validators it has a link to",
            namespace=NAMESPACE, registry=registry)
        self.power_quorum = Gauge("voting_power_quorum", "Voting power a commit needs (more than two thirds)",
                                  namespace=NAMESPACE, registry=registry)
        self.power_total = Gauge("voting_power_total", "Voting power of all validators",
                                 namespace=NAMESPACE, registry=registry)
        self.disk_free = Gauge("data_dir_free_bytes", "Bytes free for the node on the data directory's filesystem "
                               "(0 when it cannot be read)", namespace=NAMESPACE, registry=registry)
        self.disk_size = Gauge("data_dir_size_bytes", "Size of the data directory's filesystem",
                               namespace=NAMESPACE, registry=registry)

    def observe_commit(self, height: int, tx_count: int, interval_seconds: float | None) -> None:
        """Record a committed block; ``interval_seconds`` is None for the first commit after start."""
        assert height >= 0 and tx_count >= 0, "height and transaction count are never negative"
        self.height.set(height)
        self.committed_txs.inc(tx_count)
        if interval_seconds is not None:
            self.block_interval.observe(interval_seconds)

    def observe_own_precommit(self, included: bool) -> None:
        """Count a commit by whether its certificate holds this validator's precommit: a validator
        that keeps voting late, or not at all, shows as missing long before it is noticed otherwise."""
        self.own_precommits.labels("included" if included else "missing").inc()

    def set_mempool_limits(self, max_txs: int, max_bytes: int) -> None:
        self.mempool_max_txs.set(max_txs)
        self.mempool_max_bytes.set(max_bytes)

    def set_voting_power(self, connected: int, quorum: int, total: int) -> None:
        assert 0 <= connected <= total and 0 < quorum <= total, "powers of one validator set"
        self.power_connected.set(connected)
        self.power_quorum.set(quorum)
        self.power_total.set(total)

    def observe_disk(self, data_dir: str | os.PathLike[str]) -> None:
        """Free and total bytes of the data directory's filesystem; free reads 0 when it cannot be
        read, since a data directory the node cannot see is as bad as a full one."""
        try:
            usage = shutil.disk_usage(data_dir)
        except OSError:
            self.disk_free.set(0)
            return
        self.disk_free.set(usage.free)
        self.disk_size.set(usage.total)

    def set_round(self, round: int) -> None:
        self.round.set(round)

    def set_mempool(self, txs: int, size_bytes: int, gossip_dropped: int = 0) -> None:
        """The pool's size, and its running count of dropped gossip (exported as the increase since last time)."""
        self.mempool_txs.set(txs)
        self.mempool_bytes.set(size_bytes)
        if gossip_dropped > self._gossip_dropped_seen:
            self.mempool_gossip_dropped.inc(gossip_dropped - self._gossip_dropped_seen)
            self._gossip_dropped_seen = gossip_dropped

    def set_peers(self, count: int) -> None:
        self.peers.set(count)

    def observe_api_request(self, route: str, status: int) -> None:
        self.api_requests.labels(route=route, status=str(status)).inc()


class VerifierCollector:
    """Exports the batch verifier's own counters at scrape time.

    The verifier already counts batches per size bound and their time on its
    worker threads; reading that snapshot when Prometheus scrapes costs the
    hot path nothing, where observing each batch into a Histogram would add a
    lock and a call per batch.
    """

    def __init__(self, stats: Callable[[], VerifierStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        sizes = HistogramMetricFamily(
            f"{NAMESPACE}_verify_batch_size", "Signatures per batch handed to libsodium on a worker thread")
        buckets = [(str(int(bound)) if bound != float("inf") else "+Inf", count)
                   for bound, count in stats.batch_size_le]
        if buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", stats.batches))
        sizes.add_metric([], buckets, sum_value=stats.verified)
        yield sizes
        seconds = CounterMetricFamily(f"{NAMESPACE}_verify_batch_seconds", "Worker-thread time spent verifying batches")
        seconds.add_metric([], stats.batch_seconds_total)
        yield seconds
        for name, text, value in (
            ("verify_signatures", "Signatures asked about (cache hits included)", stats.signatures),
            ("verify_verified", "Signatures checked by libsodium", stats.verified),
            ("verify_cache_hits", "Signatures answered from the cache of known-valid results", stats.cache_hits),
            ("verify_helper_restarts", "Helper processes started to replace one that failed", stats.helper_restarts),
        ):
            counter = CounterMetricFamily(f"{NAMESPACE}_{name}", text)
            counter.add_metric([], value)
            yield counter
        entries = GaugeMetricFamily(f"{NAMESPACE}_verify_cache_entries", "Known-valid signatures held in the cache")
        entries.add_metric([], stats.cache_entries)
        yield entries


class NetworkCollector:
    """Exports the peer network's counters (frames, bytes, drops, refusals by reason) at scrape time."""

    def __init__(self, stats: Callable[[], NetworkStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name in ("frames_in", "frames_out", "bytes_in", "bytes_out", "drops", "bad_frames",
                     "oversized_frames", "throttled", "flood_disconnects", "observer_consensus"):
            counter = CounterMetricFamily(f"{NAMESPACE}_p2p_{name}", f"Peer network: {name.replace('_', ' ')}")
            counter.add_metric([], getattr(stats, name))
            yield counter
        refusals = CounterMetricFamily(f"{NAMESPACE}_p2p_refusals", "Peer links refused, by reason", labels=["reason"])
        # Every reason from the start, at 0 until it happens: a rule watching one reason has a series to watch.
        for reason in Refusal:
            refusals.add_metric([reason.value], stats.refusals[reason])
        yield refusals
