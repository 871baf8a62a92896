"""What the running service's read API answers: the contract for the CLI and the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kura_stream.types import Cluster, Summary


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ServiceStatus(_Answer):
    """`GET /status` and `kura-stream status --json`.

    Attributes:
        conversations: Conversations stored (each counted once).
        clusters: Base clusters.
        outliers: Conversations not (yet) in any cluster.
        dlq: Records in the dead-letter topic: counted there at start-up, then as published.
        lag: Messages waiting in the conversations topic for this consumer group.
        throughput_per_s: Conversations assigned per second over the last minute.
        last_recompute_at: When the last full recompute completed, if any.
        recompute_running: Whether a recompute is in progress.
        broker_ok: The broker answered the last check.
        store_ok: The store answered the last check.
        llm_ok: The LLM endpoint answered the last summary (False: batches wait and come again).
        started_at: When the service started.
        duplicates: Conversations received again with the same content, recognised by chat_id
            and not counted twice; kept in the store, so the count survives restarts.
    """

    conversations: int
    clusters: int
    outliers: int
    dlq: int
    lag: int
    throughput_per_s: float = 0.0
    last_recompute_at: datetime | None = None
    recompute_running: bool = False
    broker_ok: bool = True
    store_ok: bool = True
    llm_ok: bool = True
    started_at: datetime | None = None
    duplicates: int = 0


class ClusterView(Cluster):
    """A cluster as the API shows it: the Cluster fields plus what the dashboard needs.

    Attributes:
        created_at: When the cluster was born.
        history: Member counts sampled over a recent window, oldest first (for sparklines).
        visible: False when the cluster is below the minimum size shown; its name and
            description are then blank.
        named_by: Who gave the current name: offline, llm or manual (None: unnamed, or
            named before the service recorded it).
    """

    created_at: datetime | None = None
    history: tuple[int, ...] = ()
    visible: bool = True
    named_by: str | None = None


class ClusterDetail(_Answer):
    """`GET /clusters/{id}`: a cluster, its children, and a few member summaries."""

    cluster: ClusterView
    children: tuple[str, ...] = ()
    sample: tuple[Summary, ...] = Field(default=(), max_length=20)


class RecomputeStatus(_Answer):
    """`GET /recompute/{request_id}` (and the answer of `POST /recompute`)."""

    request_id: str
    state: Literal["queued", "running", "completed", "failed"]
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    clusters_before: int | None = None
    clusters_after: int | None = None


class ReadAPI(Protocol):
    """The service's read side, as the dashboard and the CLI use it (over HTTP or in tests)."""

    async def status(self) -> ServiceStatus:
        """Counts and health."""
        ...

    async def clusters(self) -> list[ClusterView]:
        """Every cluster, base and meta."""
        ...

    async def cluster(self, cluster_id: str) -> ClusterDetail:
        """One cluster with children and sample summaries (raises KeyError if unknown)."""
        ...

    async def request_recompute(self) -> RecomputeStatus:
        """Ask for a full recompute; returns at once with its request id."""
        ...

    async def recompute_status(self, request_id: str) -> RecomputeStatus:
        """Where a requested recompute is."""
        ...
