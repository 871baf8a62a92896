"""Recompute as a use case: run one, queue one, run them on a schedule, rename by hand.

One recompute runs at a time; a request during a run waits for the next turn. Outliers that
meet a cluster's threshold after a recompute join it, and their assignments are published
like the stream's. The schedule: a first recompute once a young store holds a few hundred
conversations, then time, arrivals or crowded outliers (`recompute_due`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kura_stream.protocols import ClusterNamer, ClusterStore, ParentNamer
from kura_stream.records import ClusterPoint
from kura_stream.service.api_models import RecomputeStatus
from kura_stream.service.assigner import AssignBatch, Assigner
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.outputs import Outputs
from kura_stream.service.recompute import (
    RecomputeParams,
    RecomputePlan,
    apply_recompute,
    plan_recompute,
)
from kura_stream.settings import ClusteringSettings
from kura_stream.stages.hierarchy import Embed
from kura_stream.types import ClusterEvent, ClusterEventKind, Command

logger = logging.getLogger(__name__)


@dataclass
class Recomputer:
    """Runs full recomputes over the store and publishes what they changed.

    Attributes:
        store: Conversations and clusters.
        assigner: The incremental clustering, reloaded after each recompute.
        namer: Names base clusters.
        parent_namer: Names meta clusters.
        embed: Embeds texts (names, when parents are grouped by names).
        params: How a recompute clusters.
        outputs: Where events, assignments and commands go.
        metrics: Counts recomputes and the arrivals since the last one.
        write_lock: Serialises the writes of the assigner, the namers and recomputes.
        requests: Known recompute requests by id.
    """

    store: ClusterStore
    assigner: Assigner
    namer: ClusterNamer
    parent_namer: ParentNamer
    embed: Embed
    params: RecomputeParams
    outputs: Outputs
    metrics: ServiceMetrics
    write_lock: asyncio.Lock
    requests: dict[str, RecomputeStatus] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _background: set[asyncio.Task[RecomputeStatus]] = field(default_factory=set)

    @property
    def running(self) -> bool:
        """Whether a recompute is in progress."""
        return self.lock.locked()

    async def run(self, request_id: str) -> RecomputeStatus:
        """Run one full recompute now (waiting for a running one), publishing its events."""
        self.requests[request_id] = RecomputeStatus(request_id=request_id, state="queued")
        async with self.lock:
            started = datetime.now(UTC)
            before = len(self.assigner.state.ids)
            self.requests[request_id] = RecomputeStatus(
                request_id=request_id, state="running", started_at=started, clusters_before=before
            )
            await self.outputs.cluster_events(
                [ClusterEvent(kind=ClusterEventKind.RECOMPUTE_STARTED, request_id=request_id)]
            )
            clock = time.perf_counter()
            try:
                plan, late, rehomed = await self._plan_and_apply(request_id)
            except Exception as err:
                logger.exception("recompute %s failed", request_id)
                return await self._failed(request_id, err, started, before)
            return await self._completed(
                request_id, plan, late, rehomed, started, before, time.perf_counter() - clock
            )

    async def _plan_and_apply(
        self, request_id: str
    ) -> tuple[RecomputePlan | None, int, AssignBatch]:
        plan = await plan_recompute(
            self.store,
            namer=self.namer,
            parent_namer=self.parent_namer,
            embed=self.embed,
            params=self.params,
            request_id=request_id,
        )
        late = 0
        rehomed = AssignBatch()
        if plan is not None:
            async with self.write_lock:
                late = await asyncio.to_thread(apply_recompute, self.store, plan)
                rehomed = self.assigner.reload()
        return plan, late, rehomed

    async def _failed(
        self, request_id: str, err: Exception, started: datetime, before: int
    ) -> RecomputeStatus:
        self.metrics.note_recompute("failed")
        status = RecomputeStatus(
            request_id=request_id,
            state="failed",
            detail=f"{type(err).__name__}: {err}",
            started_at=started,
            finished_at=datetime.now(UTC),
            clusters_before=before,
        )
        self.requests[request_id] = status
        failed = ClusterEvent(
            kind=ClusterEventKind.RECOMPUTE_FAILED,
            request_id=request_id,
            detail={"reason": status.detail},
        )
        await self.outputs.cluster_events([failed])
        return status

    async def _completed(
        self,
        request_id: str,
        plan: RecomputePlan | None,
        late: int,
        rehomed: AssignBatch,
        started: datetime,
        before: int,
        seconds: float,
    ) -> RecomputeStatus:
        after = len(self.assigner.state.ids)
        self.metrics.note_recompute("completed")
        detail = f"{before} -> {after} base clusters in {seconds:.2f}s"
        if plan is None:
            detail = "fewer than two conversations stored: nothing to recompute"
        status = RecomputeStatus(
            request_id=request_id,
            state="completed",
            detail=detail,
            started_at=started,
            finished_at=self.metrics.last_recompute_at,
            clusters_before=before,
            clusters_after=after,
        )
        self.requests[request_id] = status
        done = ClusterEvent(
            kind=ClusterEventKind.RECOMPUTE_COMPLETED,
            request_id=request_id,
            detail={"before": before, "after": after, "seconds": round(seconds, 2), "late": late},
        )
        await self.outputs.cluster_events([*(plan.events if plan else []), *rehomed.events, done])
        await self.outputs.assignments(rehomed.assignments)
        logger.info("recompute %s: %s", request_id, detail)
        return status

    async def start_here(self, request_id: str) -> None:
        """Run a recompute in this process's background (when no commands consumer runs here)."""
        self.requests[request_id] = RecomputeStatus(request_id=request_id, state="queued")
        task = asyncio.create_task(self.run(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def request(self, request_id: str) -> None:
        """Queue a recompute as a command on the commands topic: it survives a crash."""
        self.requests[request_id] = RecomputeStatus(request_id=request_id, state="queued")
        await self.outputs.command(Command(kind="recompute", request_id=request_id))

    async def rename(self, cluster_id: str, name: str) -> ClusterEvent | None:
        """Rename a cluster by hand; the event, or None if the cluster is unknown."""
        async with self.write_lock:
            found = self.store.get_clusters([cluster_id])
            if not found:
                return None
            meta = found[0].meta.model_copy(
                # namer manual: not upgraded to an LLM name like an offline one
                update={"name": name, "named_count": found[0].meta.count, "namer": "manual"}
            )
            self.store.upsert_clusters(
                [ClusterPoint(cluster_id=cluster_id, centroid=found[0].centroid, meta=meta)]
            )
        event = ClusterEvent(kind=ClusterEventKind.RENAMED, cluster_id=cluster_id, name=name)
        await self.outputs.cluster_events([event])
        return event

    async def schedule(self, settings: ClusteringSettings, *, poll_s: float = 5.0) -> None:
        """Recompute on time, on arrivals or on outliers, until cancelled: see `recompute_due`."""
        last = time.monotonic()
        took = 0.0
        while True:
            await asyncio.sleep(poll_s)
            due = recompute_due(
                settings,
                seconds_since=time.monotonic() - last,
                arrived=self.metrics.since_recompute,
                outliers=self.assigner.state.outliers_total,
                total=self.assigner.state.total,
                last_took=took,
            )
            if due and not self.running:
                started = time.monotonic()
                await self.run(f"scheduled-{int(time.time())}")
                last = time.monotonic()
                took = last - started


def recompute_due(
    cl: ClusteringSettings,
    *,
    seconds_since: float,
    arrived: int,
    outliers: int,
    total: int,
    last_took: float = 0.0,
) -> bool:
    """Whether the schedule asks for a recompute now.

    A young store is recomputed once it reaches recompute_first_after conversations (when it
    held fewer at the last recompute, or the start, and holds that many now), then each time
    it has doubled while it held fewer than recompute_every_n at the last one: its clusters
    are chosen again on twice the evidence (300, 600, 1,200, ...), not left as the first few
    hundred conversations drew them.

    Args:
        cl: The clustering settings.
        seconds_since: Since the last recompute finished (or the start).
        arrived: Conversations stored since then.
        outliers: Conversations waiting outside any cluster now.
        total: All conversations stored.
        last_took: Seconds the last recompute took: the next waits in proportion.
    """
    if arrived == 0:
        return False
    if seconds_since < last_took * (1.0 / cl.recompute_max_time_share - 1.0):
        return False
    before = total - arrived
    first = before < cl.recompute_first_after <= total
    young = cl.recompute_first_after <= total and before < cl.recompute_every_n
    doubled = young and arrived >= before
    enough_new = arrived >= max(cl.recompute_every_n, cl.recompute_growth * total)
    crowded = outliers >= max(cl.recompute_min_outliers, cl.recompute_outlier_share * total)
    return first or doubled or seconds_since >= cl.recompute_every_s or enough_new or crowded
