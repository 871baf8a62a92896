"""Consumer: conversations.embedded -> incremental clustering in the store -> assignments.

Stateful: exactly one is active (the embedded topic has one partition); others stand by.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._kafka import publish_confirmed, records_of
from kura_stream.service.runtime import Runtime
from kura_stream.types import DeadLetter, EmbeddedConversation

logger = logging.getLogger(__name__)


def register(rt: Runtime) -> None:
    """Subscribe the assign handler on rt.broker."""
    kafka = rt.settings.kafka

    @rt.broker.subscriber(
        kafka.topic_embedded,
        group_id=f"{kafka.group_id}-assign",
        batch=True,
        max_records=kafka.batch_max_records,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def assign(msg: KafkaMessage) -> None:
        started = time.perf_counter()
        raw = records_of(msg)
        items: list[EmbeddedConversation] = []
        dead: list[DeadLetter] = []
        for record in raw:
            try:
                items.append(EmbeddedConversation.model_validate_json(record.value or b""))
            except ValidationError as err:
                dead.append(
                    DeadLetter(
                        original=record.value or b"",
                        reason=f"invalid embedded conversation: {err.errors()[0]['msg']}",
                        stage="assign",
                        key=record.key.decode("utf-8", "replace") if record.key else None,
                    )
                )
        async with rt.write_lock:
            batch = rt.assigner.process(items)
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
        fresh = len(items) - batch.duplicates
        rt.metrics.note_assigned(max(fresh, 0))
        rt.metrics.duplicates.inc(batch.duplicates)
        rt.duplicates += batch.duplicates
        rt.conversations_since_recompute += max(fresh, 0)
        rt.dead_letters += len(dead)
        for d in dead:
            rt.metrics.dead_letters.labels(stage=d.stage).inc()
        now = datetime.now(UTC)
        for item in items:
            rt.metrics.latency.observe((now - item.received_at).total_seconds())
        rt.metrics.clusters_created.inc(sum(1 for e in batch.events if e.kind == "created"))
        rt.metrics.batch_seconds.labels(stage="assign").observe(time.perf_counter() - started)
