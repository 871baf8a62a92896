"""What the running service counts and knows of its health: the one place `status` reads.

Prometheus counters, gauges and histograms (in their own registry, one per service) and the
plain figures `/status` answers are kept side by side and updated by the same methods, so the
two never disagree.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kura_stream.types import DeadLetter

HISTORY_POINTS = 30
"""Count samples kept per cluster for sparklines."""


@dataclass
class ServiceMetrics:
    """Counters and health of one running service, exported on /metrics and /status.

    Attributes:
        registry: The Prometheus registry.
        dead_letters_total: Records in the dead-letter topic (counted there at start-up).
        duplicates_total: Conversations received again with the same content (from the store
            at start-up).
        since_recompute: Conversations assigned since the last recompute.
        lag: Messages waiting in the conversations topic for this service's group.
        broker_ok, store_ok, llm_ok: Whether each answered its last check or call.
        started_at: When the service started.
        last_recompute_at: When the last recompute completed.
        history: Each cluster's recent counts, oldest first.
    """

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    dead_letters_total: int = 0
    duplicates_total: int = 0
    since_recompute: int = 0
    lag: int = 0
    broker_ok: bool = True
    store_ok: bool = True
    llm_ok: bool = True
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_recompute_at: datetime | None = None
    history: dict[str, deque[int]] = field(default_factory=dict)

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
        self.lag_gauge = Gauge(
            "kura_consumer_lag", "Messages waiting in the input topic", registry=r
        )
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

    def note_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Count dead letters published."""
        for letter in dead:
            self.dead_letters.labels(stage=letter.stage).inc()
        self.dead_letters_total += len(dead)

    def note_duplicates(self, n: int) -> None:
        """Count conversations received again."""
        self.duplicates.inc(n)
        self.duplicates_total += n

    def note_recompute(self, outcome: str) -> None:
        """Count a finished recompute; a completed one resets the arrivals since."""
        self.recomputes.labels(outcome=outcome).inc()
        if outcome == "completed":
            self.last_recompute_at = datetime.now(UTC)
            self.since_recompute = 0

    def note_counts(self, counts: dict[str, int]) -> None:
        """Remember each cluster's count now (on a timer, for the growth sparklines)."""
        for cluster_id, count in counts.items():
            self.history.setdefault(cluster_id, deque(maxlen=HISTORY_POINTS)).append(count)

    def note_assigned(self, n: int) -> None:
        """Count n assignments and remember them for the rolling throughput."""
        self.assigned.inc(n)
        self.since_recompute += n
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
