"""Consumer: conversations -> summarise + embed -> conversations.embedded (or the DLQ).

Stateless: run as many as the conversations topic has partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from consumers._kafka import publish_confirmed, records_of
from kura_stream.service.ingest import RawRecord, ingest
from kura_stream.service.runtime import Runtime

logger = logging.getLogger(__name__)

TRANSIENT_BACKOFF_S = 5.0


def register(rt: Runtime) -> None:
    """Subscribe service.summarise_consumers summarise + embed consumers on rt.broker.

    They share one consumer group, so each owns some of the topic's partitions and their
    batches overlap: one is embedding while another parses, publishes and commits.
    """
    kafka = rt.settings.kafka

    async def summarise_embed(msg: KafkaMessage) -> None:
        started = time.perf_counter()
        raw = records_of(msg)
        records = [
            RawRecord(
                value=r.value,
                key=r.key,
                timestamp_ms=r.timestamp,
                source=f"{r.topic}/{r.partition}/{r.offset}",
            )
            for r in raw
        ]
        try:
            result = await ingest(
                records,
                summarise=rt.summarise,
                embedder=rt.embedder,
                max_bytes=kafka.max_message_bytes,
                concurrency=rt.settings.llm.concurrency,
                permanent_errors=rt.permanent_errors,
                summarise_batch=rt.summarise_batch,
            )
        except Exception:
            # Endpoint down, timeouts: nothing is committed; wait, then the batch comes again.
            logger.exception(
                "summarise batch failed; redelivering after %.0fs", TRANSIENT_BACKOFF_S
            )
            await asyncio.sleep(TRANSIENT_BACKOFF_S)
            raise
        await publish_confirmed(
            rt.broker,
            kafka.topic_embedded,
            [(e.chat_id, e.model_dump_json().encode()) for e in result.embedded],
        )
        await publish_confirmed(
            rt.broker,
            kafka.topic_dlq,
            [(d.key, d.model_dump_json().encode()) for d in result.dead],
        )
        for dead in result.dead:
            rt.metrics.dead_letters.labels(stage=dead.stage).inc()
        rt.dead_letters += len(result.dead)
        rt.metrics.ingested.inc(len(result.embedded))
        rt.metrics.batch_seconds.labels(stage="summarise").observe(time.perf_counter() - started)

    for _ in range(rt.settings.service.summarise_consumers):
        rt.broker.subscriber(
            kafka.topic_conversations,
            group_id=f"{kafka.group_id}-summarise",
            batch=True,
            max_records=kafka.batch_max_records,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )(summarise_embed)
