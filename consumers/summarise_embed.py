"""Consumer: conversations -> summarise + embed -> conversations.embedded (or the DLQ).

Stateless: run as many as the conversations topic has partitions.
"""

from __future__ import annotations

import time
from typing import Annotated

from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from consumers._raw import RetryGuard, is_transient, raw_router, records_of
from kura_stream.errors import EndpointUnavailableError
from kura_stream.service.ingest import Ingestor, RawRecord
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.outputs import Outputs
from kura_stream.settings import KafkaSettings, Settings

GUARD = "summarise_guard"
"""Context key of this consumer's RetryGuard (one per router)."""


async def summarise_embed(
    msg: KafkaMessage,
    ingestor: Annotated[Ingestor, Context("ingestor")],
    outputs: Annotated[Outputs, Context("outputs")],
    metrics: Annotated[ServiceMetrics, Context("metrics")],
    guard: Annotated[RetryGuard, Context(GUARD)],
) -> None:
    """Summarise and embed a batch; publish it and its dead letters, then it is committed."""
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
        result = await ingestor(records)
    except Exception as err:
        metrics.llm_ok = not isinstance(err, EndpointUnavailableError)
        if not await guard.failed(raw, err):
            raise  # nothing is committed: the batch comes again
        result = await ingestor.each(
            records, reason_for=guard.give_up_reason, is_transient=is_transient
        )
    guard.succeeded(raw)
    metrics.llm_ok = True
    await outputs.embedded(result.embedded)
    await outputs.dead_letters(result.dead)
    metrics.note_dead_letters(result.dead)
    metrics.ingested.inc(len(result.embedded))
    metrics.batch_seconds.labels(stage="summarise").observe(time.perf_counter() - started)


def router(kafka: KafkaSettings, *, consumers: int) -> KafkaRouter:
    """`consumers` summarise + embed consumers in one group.

    Each owns some of the topic's partitions and their batches overlap: one is embedding
    while another parses, publishes and commits.
    """
    routes = raw_router()
    for _ in range(consumers):
        routes.subscriber(
            kafka.topic_conversations,
            group_id=f"{kafka.group_id}-summarise",
            batch=True,
            max_records=kafka.batch_max_records,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )(summarise_embed)
    return routes


def consumers_for(settings: Settings, ingestor: Ingestor) -> int:
    """How many summarise consumers to run: settings.service.summarise_consumers when set.

    Otherwise its default, or with an LLM summariser one per partition of the conversations
    topic: a consumer has one batch in flight, which waits for its slowest call and that
    call's retries, so the calls of other batches must fill the LLM's window meanwhile
    (bench_llm_path, 0.5 s with 10% of calls failing, c=8: 2 consumers 11.1/s, 4: 12.8/s).
    """
    configured = settings.service.summarise_consumers
    if "summarise_consumers" in settings.service.model_fields_set:
        return configured
    if ingestor.summarise_batch is not None:  # offline: a batch is one embedder call
        return configured
    return max(configured, settings.kafka.partitions)


def context() -> dict[str, object]:
    """What this consumer keeps between batches, by context key."""
    return {GUARD: RetryGuard("summarise")}
