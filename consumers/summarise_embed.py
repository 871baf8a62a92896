"""Consumer: conversations -> summarise + embed -> conversations.embedded (or the DLQ).

Stateless: run as many as the conversations topic has partitions.
"""

from __future__ import annotations

import logging
import time

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from consumers._kafka import publish_confirmed, records_of
from consumers._raw import RetryGuard, is_transient, keep_raw_body, tolerant_parser
from kura_stream.errors import EndpointUnavailableError
from kura_stream.service.ingest import IngestResult, RawRecord, ingest, ingest_each
from kura_stream.service.runtime import Runtime

logger = logging.getLogger(__name__)


def register(rt: Runtime) -> None:
    """Subscribe service.summarise_consumers summarise + embed consumers on rt.broker.

    They share one consumer group, so each owns some of the topic's partitions and their
    batches overlap: one is embedding while another parses, publishes and commits.
    """
    kafka = rt.settings.kafka
    guard = RetryGuard("summarise")

    async def run(records: list[RawRecord], *, apart: bool) -> IngestResult:
        options = {
            "summarise": rt.summarise,
            "embedder": rt.embedder,
            "max_bytes": kafka.max_message_bytes,
            "concurrency": rt.settings.llm.concurrency,
            "permanent_errors": rt.permanent_errors,
            "summarise_batch": rt.summarise_batch,
            "metadata_keys": rt.settings.privacy.metadata_keys,
        }
        if apart:
            return await ingest_each(
                records, reason_for=guard.give_up_reason, is_transient=is_transient, **options
            )
        return await ingest(records, **options)  # type: ignore[arg-type]

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
            result = await run(records, apart=False)
        except Exception as err:
            rt.llm_ok = not isinstance(err, EndpointUnavailableError)
            if not await guard.failed(raw, err):
                raise  # nothing is committed: the batch comes again
            result = await run(records, apart=True)
        guard.succeeded(raw)
        rt.llm_ok = True
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
            parser=tolerant_parser,
            decoder=keep_raw_body,
        )(summarise_embed)
