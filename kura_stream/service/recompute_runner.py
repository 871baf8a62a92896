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
from kura_stream.service.recompute_apply import Applying, Journal, Journaled
from kura_stream.service.recompute_snapshot import release_memory
from kura_stream.settings import ClusteringSettings
from kura_stream.stages.assign import ClusterState
from kura_stream.stages.hierarchy import Embed
from kura_stream.types import ClusterEvent, ClusterEventKind, Command

logger = logging.getLogger(__name__)

CATCH_UP_ROUNDS = 20
"""Rounds of placing, outside the lock, what the stream wrote since the last round."""

CATCH_UP_LEFT = 500
"""Conversations left to place under the lock at most (fewer rounds when it is reached)."""


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
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds of the last recompute: plan_s, write_s (outside the lock), locked_s."""
    settled: bool = True
    """Whether the store and the assigner agree: false from a recompute's start until it
    succeeds (a failed or interrupted one may have moved conversations the state missed)."""

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
            self.settled = False
            try:
                plan, late, rehomed = await self._plan_and_apply(request_id)
            except Exception as err:
                logger.exception("recompute %s failed", request_id)
                return await self._failed(request_id, err, started, before)
            self.settled = True
            return await self._completed(
                request_id, plan, late, rehomed, started, before, time.perf_counter() - clock
            )

    async def _plan_and_apply(
        self, request_id: str
    ) -> tuple[RecomputePlan | None, int, AssignBatch]:
        journal = self.store.watch_conversations() if isinstance(self.store, Journaled) else None
        try:
            clock = time.perf_counter()
            plan = await plan_recompute(
                self.store,
                namer=self.namer,
                parent_namer=self.parent_namer,
                embed=self.embed,
                params=self.params,
                request_id=request_id,
            )
            self.timings = {"plan_s": time.perf_counter() - clock, "write_s": 0.0, "locked_s": 0.0}
            if plan is None:
                return None, 0, AssignBatch()
            self.timings |= {f"plan_{phase}_s": sec for phase, sec in plan.phases.items()}
            if journal is None:
                return plan, *await self._apply_locked(plan)
            return plan, await self._apply_aside(plan, journal), AssignBatch()
        finally:
            if journal is not None:
                self.store.stop_watching(journal)  # type: ignore[attr-defined]

    async def _apply_locked(self, plan: RecomputePlan) -> tuple[int, AssignBatch]:
        """A store without journals: the whole apply under the lock, then a reload."""
        async with self.write_lock:
            clock = time.perf_counter()
            late = await asyncio.to_thread(apply_recompute, self.store, plan)
            rehomed = self.assigner.reload()
            self.timings["locked_s"] = time.perf_counter() - clock
        return late, rehomed

    async def _apply_aside(self, plan: RecomputePlan, journal: Journal) -> int:
        """Write outside the lock, catch up with the stream, then swap under the lock.

        Every conversation is in a cluster after it, so no outlier is left to re-home.
        """
        clock = time.perf_counter()
        applying = Applying(self.store, plan)
        try:
            release_memory()  # what the map left: the apply's peak stands on what is kept
            state = await asyncio.to_thread(applying.state, self.assigner.params)
            await asyncio.to_thread(applying.write_members)
            await asyncio.to_thread(plan.snapshot.index)  # built here, not under the lock
            pending = journal.drain()
            for _ in range(CATCH_UP_ROUNDS):
                if len(pending) <= CATCH_UP_LEFT:
                    break
                await asyncio.to_thread(applying.replay, pending)
                pending = journal.drain()
            self.timings["write_s"] = time.perf_counter() - clock
            async with self.write_lock:
                # Nothing writes conversations while the lock is held: the journal is complete.
                last = sorted({*pending, *journal.drain()})
                await asyncio.to_thread(self._swap, applying, state, last)
        except Exception:
            # Some conversations may have moved: the assigner follows the store again.
            async with self.write_lock:
                await asyncio.to_thread(self.assigner.reload)
            raise
        logger.info(
            "recompute applied: %.2fs outside the lock, %.3fs under it",
            self.timings["write_s"],
            self.timings["locked_s"],
        )
        return len(applying.late)

    def _swap(self, applying: Applying, state: ClusterState, last: list[str]) -> None:
        """Under the lock: place the last arrivals, finish the records, swap the state."""
        clock = time.perf_counter()
        applying.replay(last)
        replayed = time.perf_counter()
        metas = applying.write_clusters(final=True)
        state = applying.settle(state)
        state.window = self.assigner.state.window
        self.assigner.state = state
        self.assigner.meta = metas
        self.timings["locked_s"] = time.perf_counter() - clock
        self.timings |= {"locked_replay_s": replayed - clock, "locked_replayed": len(last)}

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
