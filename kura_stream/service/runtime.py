"""Everything a running consumer needs, built once by the composition root."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker

from kura_stream.protocols import ClusterNamer, ClusterStore, Embedder, ParentNamer
from kura_stream.service.api_models import RecomputeStatus
from kura_stream.service.assigner import Assigner
from kura_stream.service.ingest import SummariseMany, SummariseOne
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.settings import Settings
from kura_stream.types import HierarchyGrouping


@dataclass
class Runtime:
    """The collaborators of the consumers, and the little state they share in one process.

    Attributes:
        settings: The configuration.
        broker: The FastStream Kafka broker the consumers subscribe and publish through.
        store: Conversations and clusters.
        embedder: Embeds summaries.
        summarise: Summarises one conversation.
        permanent_errors: Exceptions of summarise that dead-letter a record.
        namer: Names base clusters (in recomputes, and in the name consumer unless a
            background namer is set).
        parent_namer: Names meta clusters.
        hierarchy_grouping: How recomputes form parents (see build_hierarchy).
        assigner: Incremental clustering over the store.
        summarise_batch: Summarises a whole batch at once, when the summariser can.
        background_namer: Names-only LLM mode: the LLM namer with which the name consumer
            renames clusters that `namer` (offline) named; None: `namer` names them all.
        metrics: Prometheus metrics.
        write_lock: Serialises the assigner's and the recompute's writes.
        recompute_lock: One recompute at a time.
        recomputes: Known recompute requests by id.
        started_at: When the service started.
        closers: Called once when the service stops (an embedding worker's shutdown).
        llm_ok: False while the LLM endpoint does not answer (batches wait and come again).
    """

    settings: Settings
    broker: KafkaBroker
    store: ClusterStore
    embedder: Embedder
    summarise: SummariseOne
    permanent_errors: tuple[type[Exception], ...]
    namer: ClusterNamer
    parent_namer: ParentNamer
    assigner: Assigner
    summarise_batch: SummariseMany | None = None
    background_namer: ClusterNamer | None = None
    hierarchy_grouping: HierarchyGrouping = "names"
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recompute_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recomputes: dict[str, RecomputeStatus] = field(default_factory=dict)
    dead_letters: int = 0
    duplicates: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_recompute_at: datetime | None = None
    conversations_since_recompute: int = 0
    lag: int = 0
    broker_ok: bool = True
    llm_ok: bool = True
    store_ok: bool = True
    history: dict[str, deque[int]] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
