"""Prometheus metrics of the running service, in their own registry (one per service)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    """Counters, gauges and histograms exported on /metrics, plus a rolling throughput."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.ingested = Counter(
            "kura_ingested", "Conversations summarised and embedded", registry=r
        )
        self.assigned = Counter("kura_assigned", "Conversations assigned (each once)", registry=r)
        self.duplicates = Counter(
            "kura_duplicates", "Redelivered conversations skipped", registry=r
        )
        self.dead_letters = Counter(
            "kura_dead_letters", "Records sent to the DLQ", ["stage"], registry=r
        )
        self.clusters_created = Counter("kura_clusters_created", "Clusters born", registry=r)
        self.renamed = Counter("kura_clusters_named", "Clusters (re)named", registry=r)
        self.recomputes = Counter("kura_recomputes", "Full recomputes", ["outcome"], registry=r)
        self.conversations = Gauge("kura_conversations", "Conversations stored", registry=r)
        self.clusters = Gauge("kura_clusters", "Base clusters", registry=r)
        self.outliers = Gauge("kura_outliers", "Conversations in no cluster", registry=r)
        self.lag = Gauge("kura_consumer_lag", "Messages waiting in the input topic", registry=r)
        self.latency = Histogram(
            "kura_latency_seconds",
            "From the record's Kafka timestamp to its assignment",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "kura_batch_seconds", "Time to process one consumer batch", ["stage"], registry=r
        )
        self._recent: deque[tuple[float, int]] = deque()

    def note_assigned(self, n: int) -> None:
        """Count n assignments and remember them for the rolling throughput."""
        self.assigned.inc(n)
        now = time.monotonic()
        self._recent.append((now, n))
        while self._recent and self._recent[0][0] < now - 60:
            self._recent.popleft()

    def throughput_per_s(self) -> float:
        """Assignments per second over the last minute (or since the first one)."""
        now = time.monotonic()
        while self._recent and self._recent[0][0] < now - 60:
            self._recent.popleft()
        if not self._recent:
            return 0.0
        span = max(now - self._recent[0][0], 1.0)
        return sum(n for _, n in self._recent) / span
