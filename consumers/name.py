"""Consumer: cluster-events -> name new clusters and clusters that have grown -> renamed events.

Names are given from a bounded sample: up to 50 members and 50 members of the nearest other
clusters (Clio's contrastive set), so a prompt never grows with the cluster. In names-only LLM
mode (`serve --offline --names llm`) a cluster first gets an offline name, shown at once, and
the LLM renames it here in the background: new and doubled clusters, and those a recompute
named offline.
"""

from __future__ import annotations

import logging

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._kafka import publish_confirmed, records_of
from consumers._raw import RetryGuard, keep_raw_body, tolerant_parser
from kura_stream.service.naming import clusters_to_name, name_due_clusters
from kura_stream.service.runtime import Runtime
from kura_stream.types import ClusterEvent

logger = logging.getLogger(__name__)

LLM_BATCH = 8
"""Events per batch when the LLM names in the background (seconds per cluster on 2 cores)."""
LLM_MAX_POLL_S = 3600
"""Longest an LLM-naming batch may take before the consumer group drops the consumer."""


def register(rt: Runtime) -> None:
    """Subscribe the naming handler on rt.broker."""
    kafka = rt.settings.kafka
    background = rt.background_namer is not None
    guard = RetryGuard("name")

    async def publish(events: list[ClusterEvent]) -> None:
        await publish_confirmed(
            rt.broker,
            kafka.topic_cluster_events,
            [(e.cluster_id, e.model_dump_json().encode()) for e in events],
        )
        rt.metrics.renamed.inc(len(events))

    @rt.broker.subscriber(
        kafka.topic_cluster_events,
        group_id=f"{kafka.group_id}-name",
        batch=True,
        max_records=LLM_BATCH if background else 64,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=(LLM_MAX_POLL_S if background else 300) * 1000,
        parser=tolerant_parser,
        decoder=keep_raw_body,
    )
    async def name(msg: KafkaMessage) -> None:
        raw = records_of(msg)
        events: list[ClusterEvent] = []
        for record in raw:
            try:
                events.append(ClusterEvent.model_validate_json(record.value or b""))
            except (ValidationError, RecursionError, ValueError):
                logger.warning("ignoring a malformed cluster event at offset %s", record.offset)
        try:
            await name_due_clusters(
                rt.store,
                clusters_to_name(events, after_recompute=background),
                namer=rt.namer,
                background_namer=rt.background_namer,
                min_size_shown=rt.settings.clustering.min_cluster_size_shown,
                write_lock=rt.write_lock,
                publish=publish,
            )
        except Exception as err:
            if not await guard.failed(raw, err):
                raise
            # Naming is redone by every recompute: skipping these events loses no data.
            logger.error("name: skipped %d cluster events that kept failing", len(events))
        guard.succeeded(raw)
