"""Consumer: commands (recompute, rename) -> full recompute or rename -> cluster events.

Recomputes also run on a schedule (a first one once a young store holds a few hundred
conversations, then time, arrivals or crowded outliers); see `recompute_due`. One runs at a
time; a request during a run waits for the next turn. Outliers that meet a cluster's threshold
after a recompute join it, and their assignments are published like the stream's.

A recompute command's offset is committed only when its recompute has finished (completed
or failed), so a service that dies during one runs it again when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._kafka import publish_confirmed, records_of
from consumers._raw import keep_raw_body, tolerant_parser
from kura_stream.records import ClusterPoint
from kura_stream.service.api_models import RecomputeStatus
from kura_stream.service.assigner import AssignBatch
from kura_stream.service.recompute import RecomputeParams, apply_recompute, plan_recompute
from kura_stream.service.runtime import Runtime
from kura_stream.settings import ClusteringSettings
from kura_stream.types import ClusterEvent, ClusterEventKind, Command, DeadLetter

logger = logging.getLogger(__name__)

_background: set[asyncio.Task[RecomputeStatus]] = set()

RECOMPUTE_MAX_S = 3600
"""Longest a recompute may run inside the command handler before the consumer group drops
the consumer (its max poll interval)."""


async def _publish(rt: Runtime, events: list[ClusterEvent]) -> None:
    await publish_confirmed(
        rt.broker,
        rt.settings.kafka.topic_cluster_events,
        [(e.cluster_id, e.model_dump_json().encode()) for e in events],
    )


async def run_recompute(rt: Runtime, request_id: str) -> RecomputeStatus:
    """Run one full recompute now (waiting for a running one), publishing its events."""
    rt.recomputes[request_id] = RecomputeStatus(request_id=request_id, state="queued")
    async with rt.recompute_lock:
        started = datetime.now(UTC)
        before = len(rt.assigner.state.ids)
        rt.recomputes[request_id] = RecomputeStatus(
            request_id=request_id, state="running", started_at=started, clusters_before=before
        )
        await _publish(
            rt, [ClusterEvent(kind=ClusterEventKind.RECOMPUTE_STARTED, request_id=request_id)]
        )
        clock = time.perf_counter()
        try:
            cl = rt.settings.clustering
            plan = await plan_recompute(
                rt.store,
                namer=rt.namer,
                parent_namer=rt.parent_namer,
                embed=rt.embedder.embed,
                params=RecomputeParams(
                    max_clusters=cl.recompute_max_clusters,
                    fit_sample=cl.recompute_fit_sample,
                    top_level=cl.top_level_clusters,
                    grouping=rt.hierarchy_grouping,
                    min_size_shown=cl.min_cluster_size_shown,
                ),
                request_id=request_id,
            )
            late = 0
            rehomed = AssignBatch()
            if plan is not None:
                async with rt.write_lock:
                    late = await asyncio.to_thread(apply_recompute, rt.store, plan)
                    rehomed = rt.assigner.reload()
        except Exception as err:
            logger.exception("recompute %s failed", request_id)
            rt.metrics.recomputes.labels(outcome="failed").inc()
            status = RecomputeStatus(
                request_id=request_id,
                state="failed",
                detail=f"{type(err).__name__}: {err}",
                started_at=started,
                finished_at=datetime.now(UTC),
                clusters_before=before,
            )
            rt.recomputes[request_id] = status
            await _publish(
                rt,
                [
                    ClusterEvent(
                        kind=ClusterEventKind.RECOMPUTE_FAILED,
                        request_id=request_id,
                        detail={"reason": status.detail},
                    )
                ],
            )
            return status
        after = len(rt.assigner.state.ids)
        seconds = round(time.perf_counter() - clock, 2)
        rt.last_recompute_at = datetime.now(UTC)
        rt.conversations_since_recompute = 0
        rt.metrics.recomputes.labels(outcome="completed").inc()
        detail = f"{before} -> {after} base clusters in {seconds}s"
        if plan is None:
            detail = "fewer than two conversations stored: nothing to recompute"
        status = RecomputeStatus(
            request_id=request_id,
            state="completed",
            detail=detail,
            started_at=started,
            finished_at=rt.last_recompute_at,
            clusters_before=before,
            clusters_after=after,
        )
        rt.recomputes[request_id] = status
        done = ClusterEvent(
            kind=ClusterEventKind.RECOMPUTE_COMPLETED,
            request_id=request_id,
            detail={"before": before, "after": after, "seconds": seconds, "late": late},
        )
        await _publish(rt, [*(plan.events if plan else []), *rehomed.events, done])
        await publish_confirmed(
            rt.broker,
            rt.settings.kafka.topic_assignments,
            [(a.chat_id, a.model_dump_json().encode()) for a in rehomed.assignments],
        )
        logger.info("recompute %s: %s", request_id, detail)
        return status


async def start_recompute(rt: Runtime, request_id: str) -> None:
    """Run a recompute in this process's background (when no commands consumer runs here)."""
    rt.recomputes[request_id] = RecomputeStatus(request_id=request_id, state="queued")
    task = asyncio.create_task(run_recompute(rt, request_id))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def request_recompute(rt: Runtime, request_id: str) -> None:
    """Queue a recompute as a command on the commands topic: it survives a crash."""
    rt.recomputes[request_id] = RecomputeStatus(request_id=request_id, state="queued")
    command = Command(kind="recompute", request_id=request_id)
    await publish_confirmed(
        rt.broker, rt.settings.kafka.topic_commands, [(None, command.model_dump_json().encode())]
    )


async def rename(rt: Runtime, cluster_id: str, name: str) -> ClusterEvent | None:
    """Rename a cluster by hand; returns the event, or None if the cluster is unknown."""
    async with rt.write_lock:
        found = rt.store.get_clusters([cluster_id])
        if not found:
            return None
        meta = found[0].meta.model_copy(
            # namer manual: not upgraded to an LLM name like an offline one
            update={"name": name, "named_count": found[0].meta.count, "namer": "manual"}
        )
        rt.store.upsert_clusters(
            [ClusterPoint(cluster_id=cluster_id, centroid=found[0].centroid, meta=meta)]
        )
    return ClusterEvent(kind=ClusterEventKind.RENAMED, cluster_id=cluster_id, name=name)


def register(rt: Runtime) -> None:
    """Subscribe the commands handler on rt.broker."""
    kafka = rt.settings.kafka

    @rt.broker.subscriber(
        kafka.topic_commands,
        group_id=f"{kafka.group_id}-commands",
        auto_offset_reset="latest",
        ack_policy=AckPolicy.ACK,
        max_poll_interval_ms=RECOMPUTE_MAX_S * 1000,
        parser=tolerant_parser,
        decoder=keep_raw_body,
    )
    async def on_command(msg: KafkaMessage) -> None:
        record = records_of(msg)[0]
        try:
            command = Command.model_validate_json(record.value or b"")
        except (ValidationError, RecursionError, ValueError) as err:
            reason = f"invalid command: {err!r}"[:300]
            logger.warning("dead letter at commands (offset %s): %s", record.offset, reason)
            dead = DeadLetter.from_record(
                record.value,
                reason=reason,
                stage="commands",
                key=record.key,
                source=f"{record.topic}/{record.partition}/{record.offset}",
            )
            await publish_confirmed(
                rt.broker, kafka.topic_dlq, [(dead.key, dead.model_dump_json().encode())]
            )
            rt.dead_letters += 1
            return
        if command.kind == "recompute":
            await run_recompute(rt, command.request_id)  # committed when it has finished
        elif command.cluster_id and command.name:
            event = await rename(rt, command.cluster_id, command.name)
            if event is not None:
                await _publish(rt, [event])


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


async def recompute_scheduler(rt: Runtime, *, poll_s: float = 5.0) -> None:
    """Recompute on time, on arrivals or on outliers: see `recompute_due`."""
    cl = rt.settings.clustering
    last = time.monotonic()
    took = 0.0
    while True:
        await asyncio.sleep(poll_s)
        due = recompute_due(
            cl,
            seconds_since=time.monotonic() - last,
            arrived=rt.conversations_since_recompute,
            outliers=rt.assigner.state.outliers_total,
            total=rt.assigner.state.total,
            last_took=took,
        )
        if due and not rt.recompute_lock.locked():
            started = time.monotonic()
            await run_recompute(rt, f"scheduled-{int(time.time())}")
            last = time.monotonic()
            took = last - started
