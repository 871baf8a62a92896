"""Consumer: conversations.embedded -> incremental clustering in the store -> assignments.

Stateful: exactly one is active (the embedded topic has one partition); others stand by.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TypeAlias

from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._kafka import publish_confirmed, records_of
from consumers._raw import RetryGuard, is_transient, keep_raw_body, tolerant_parser
from kura_stream.service.assigner import AssignBatch
from kura_stream.service.runtime import Runtime
from kura_stream.types import DeadLetter, EmbeddedConversation

logger = logging.getLogger(__name__)

Raw: TypeAlias = ConsumerRecord[bytes, bytes]


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


def register(rt: Runtime) -> None:
    """Subscribe the assign handler on rt.broker."""
    kafka = rt.settings.kafka
    guard = RetryGuard("assign")

    async def place(items: list[EmbeddedConversation], kept: list[Raw]) -> AssignBatch:
        async with rt.write_lock:
            return rt.assigner.process(items, [_source(r) for r in kept])

    async def place_each(
        items: list[EmbeddedConversation], kept: list[Raw], dead: list[DeadLetter]
    ) -> AssignBatch:
        total = AssignBatch()
        for item, record in zip(items, kept, strict=True):
            try:
                one = await place([item], [record])
            except Exception as err:
                if is_transient(err):
                    raise
                dead.append(_dead(record, guard.give_up_reason(err)))
                continue
            total.assignments += one.assignments
            total.events += one.events
            total.duplicates += one.duplicates
            total.replayed += one.replayed
            total.conflicts += [(items.index(item), reason) for _, reason in one.conflicts]
        return total

    @rt.broker.subscriber(
        kafka.topic_embedded,
        group_id=f"{kafka.group_id}-assign",
        batch=True,
        max_records=kafka.batch_max_records,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=tolerant_parser,
        decoder=keep_raw_body,
    )
    async def assign(msg: KafkaMessage) -> None:
        started = time.perf_counter()
        raw = records_of(msg)
        items, kept, dead = parse_embedded(raw, rt.store.dim)
        try:
            batch = await place(items, kept)
        except Exception as err:
            if not await guard.failed(raw, err):
                raise
            batch = await place_each(items, kept, dead)
        guard.succeeded(raw)
        dead += [_dead(kept[index], reason) for index, reason in batch.conflicts]
        await publish_confirmed(
            rt.broker,
            kafka.topic_assignments,
            [(a.chat_id, a.model_dump_json().encode()) for a in batch.assignments],
        )
        await publish_confirmed(
            rt.broker,
            kafka.topic_cluster_events,
            [(e.cluster_id, e.model_dump_json().encode()) for e in batch.events],
        )
        await publish_confirmed(
            rt.broker, kafka.topic_dlq, [(d.key, d.model_dump_json().encode()) for d in dead]
        )
        note_batch(rt, items, batch, dead, time.perf_counter() - started)


def note_batch(
    rt: Runtime,
    items: list[EmbeddedConversation],
    batch: AssignBatch,
    dead: list[DeadLetter],
    seconds: float,
) -> None:
    """Count what a batch did, in the metrics and the runtime's counters."""
    fresh = max(len(items) - batch.duplicates - batch.replayed - len(batch.conflicts), 0)
    rt.metrics.note_assigned(fresh)
    rt.metrics.duplicates.inc(batch.duplicates)
    rt.duplicates += batch.duplicates
    rt.conversations_since_recompute += fresh
    rt.dead_letters += len(dead)
    for d in dead:
        rt.metrics.dead_letters.labels(stage=d.stage).inc()
    now = datetime.now(UTC)
    for item in items:
        rt.metrics.latency.observe((now - item.received_at).total_seconds())
    rt.metrics.clusters_created.inc(sum(1 for e in batch.events if e.kind == "created"))
    rt.metrics.batch_seconds.labels(stage="assign").observe(seconds)
