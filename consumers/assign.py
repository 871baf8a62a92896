"""Consumer: conversations.embedded -> incremental clustering in the store -> assignments.

Stateful: exactly one is active (the embedded topic has one partition); others stand by.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, TypeAlias

from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._raw import RetryGuard, is_transient, raw_router, records_of
from kura_stream.adapters.kafka_stream import KafkaRecord
from kura_stream.service.assigner import AssignBatch, Assigner
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.outputs import Outputs
from kura_stream.settings import KafkaSettings
from kura_stream.types import DeadLetter, EmbeddedConversation

logger = logging.getLogger(__name__)

GUARD = "assign_guard"
"""Context key of this consumer's RetryGuard."""

Raw: TypeAlias = KafkaRecord


def _source(record: Raw) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _dead(record: Raw, reason: str) -> DeadLetter:
    logger.warning("dead letter at assign (%s): %s", _source(record), reason)
    return DeadLetter.from_record(
        record.value, reason=reason, stage="assign", key=record.key, source=_source(record)
    )


def parse_embedded(
    raw: tuple[Raw, ...], dim: int
) -> tuple[list[EmbeddedConversation], list[Raw], list[DeadLetter]]:
    """The batch's valid embedded conversations (with their records) and dead letters."""
    items: list[EmbeddedConversation] = []
    kept: list[Raw] = []
    dead: list[DeadLetter] = []
    for record in raw:
        try:
            item = EmbeddedConversation.model_validate_json(record.value or b"")
        except ValidationError as err:
            dead.append(_dead(record, f"invalid embedded conversation: {err.errors()[0]['msg']}"))
            continue
        except (RecursionError, ValueError) as err:
            dead.append(_dead(record, f"unreadable embedded conversation: {err!r}"[:300]))
            continue
        if len(item.vector) != dim:
            dead.append(_dead(record, f"vector has {len(item.vector)} dimensions, not {dim}"))
            continue
        items.append(item)
        kept.append(record)
    return items, kept, dead


async def _place(
    assigner: Assigner, lock: asyncio.Lock, items: list[EmbeddedConversation], kept: list[Raw]
) -> AssignBatch:
    async with lock:
        # A record is known by the conversation record it came from: summarised again after
        # a crash upstream, it is a redelivery (its outputs published again), not a resend.
        sources = [item.origin or _source(r) for item, r in zip(items, kept, strict=True)]
        return assigner.process(items, sources)


async def _place_each(
    assigner: Assigner,
    lock: asyncio.Lock,
    guard: RetryGuard,
    batch: tuple[list[EmbeddedConversation], list[Raw], list[DeadLetter]],
) -> AssignBatch:
    """A batch that keeps failing, one record at a time: only the culprits die."""
    items, kept, dead = batch
    total = AssignBatch()
    for index, (item, record) in enumerate(zip(items, kept, strict=True)):
        try:
            one = await _place(assigner, lock, [item], [record])
        except Exception as err:
            if is_transient(err):
                raise
            dead.append(_dead(record, guard.give_up_reason(err)))
            continue
        total.assignments += one.assignments
        total.events += one.events
        total.duplicates += one.duplicates
        total.replayed += one.replayed
        total.conflicts += [(index, reason) for _, reason in one.conflicts]
    return total


async def assign(
    msg: KafkaMessage,
    assigner: Annotated[Assigner, Context("assigner")],
    lock: Annotated[asyncio.Lock, Context("write_lock")],
    outputs: Annotated[Outputs, Context("outputs")],
    metrics: Annotated[ServiceMetrics, Context("metrics")],
    guard: Annotated[RetryGuard, Context(GUARD)],
) -> None:
    """Place a batch in the store; publish assignments, cluster events and dead letters."""
    started = time.perf_counter()
    raw = records_of(msg)
    items, kept, dead = parse_embedded(raw, assigner.store.dim)
    try:
        batch = await _place(assigner, lock, items, kept)
    except Exception as err:
        if not await guard.failed(raw, err):
            raise
        batch = await _place_each(assigner, lock, guard, (items, kept, dead))
    guard.succeeded(raw)
    dead += [_dead(kept[index], reason) for index, reason in batch.conflicts]
    await outputs.assignments(batch.assignments)
    await outputs.cluster_events(batch.events)
    await outputs.dead_letters(dead)
    note_batch(metrics, items, batch, dead, time.perf_counter() - started)


def note_batch(
    metrics: ServiceMetrics,
    items: list[EmbeddedConversation],
    batch: AssignBatch,
    dead: list[DeadLetter],
    seconds: float,
) -> None:
    """Count what a batch did."""
    fresh = max(len(items) - batch.duplicates - batch.replayed - len(batch.conflicts), 0)
    metrics.note_assigned(fresh)
    metrics.note_duplicates(batch.duplicates)
    metrics.note_dead_letters(dead)
    now = datetime.now(UTC)
    for item in items:
        metrics.latency.observe((now - item.received_at).total_seconds())
    metrics.clusters_created.inc(sum(1 for e in batch.events if e.kind == "created"))
    metrics.batch_seconds.labels(stage="assign").observe(seconds)


def router(kafka: KafkaSettings) -> KafkaRouter:
    """The assign consumer."""
    routes = raw_router()
    routes.subscriber(
        kafka.topic_embedded,
        group_id=f"{kafka.group_id}-assign",
        batch=True,
        max_records=kafka.batch_max_records,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(assign)
    return routes


def context() -> dict[str, object]:
    """What this consumer keeps between batches, by context key."""
    return {GUARD: RetryGuard("assign")}
