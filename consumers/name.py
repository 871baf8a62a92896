"""Consumer: cluster-events -> name new clusters and clusters that have grown -> renamed events.

Names are given from a bounded sample: up to 50 members and 50 members of the nearest other
clusters (Clio's contrastive set), so a prompt never grows with the cluster. In names-only LLM
mode (`serve --offline --names llm`) a cluster first gets an offline name, shown at once, and
the LLM renames it here in the background: new and doubled clusters, and those a recompute
named offline.
"""

from __future__ import annotations

import logging
from typing import Annotated

from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._raw import RetryGuard, raw_router, records_of
from kura_stream.service.name_step import ClusterNaming
from kura_stream.settings import KafkaSettings
from kura_stream.types import ClusterEvent

logger = logging.getLogger(__name__)

GUARD = "name_guard"
"""Context key of this consumer's RetryGuard."""
LLM_BATCH = 8
"""Events per batch when the LLM names in the background (seconds per cluster on 2 cores)."""
LLM_MAX_POLL_S = 3600
"""Longest an LLM-naming batch may take before the consumer group drops the consumer."""


async def name(
    msg: KafkaMessage,
    naming: Annotated[ClusterNaming, Context("naming")],
    guard: Annotated[RetryGuard, Context(GUARD)],
) -> None:
    """Name the clusters a batch of events made due."""
    raw = records_of(msg)
    events: list[ClusterEvent] = []
    for record in raw:
        try:
            events.append(ClusterEvent.model_validate_json(record.value or b""))
        except (ValidationError, RecursionError, ValueError):
            logger.warning("ignoring a malformed cluster event at offset %s", record.offset)
    try:
        await naming(events)
    except Exception as err:
        if not await guard.failed(raw, err):
            raise
        # Naming is redone by every recompute: skipping these events loses no data.
        logger.error("name: skipped %d cluster events that kept failing", len(events))
    guard.succeeded(raw)


def router(kafka: KafkaSettings, *, background: bool) -> KafkaRouter:
    """The name consumer; with a background LLM namer its batches are small and slow."""
    routes = raw_router()
    routes.subscriber(
        kafka.topic_cluster_events,
        group_id=f"{kafka.group_id}-name",
        batch=True,
        max_records=LLM_BATCH if background else 64,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=(LLM_MAX_POLL_S if background else 300) * 1000,
    )(name)
    return routes


def context() -> dict[str, object]:
    """What this consumer keeps between batches, by context key."""
    return {GUARD: RetryGuard("name")}
