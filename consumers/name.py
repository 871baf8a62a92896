"""Consumer: cluster-events -> name new clusters and clusters that have grown -> renamed events.

Names are given from a bounded sample: up to 50 members and 50 members of the nearest other
clusters (Clio's contrastive set), so a prompt never grows with the cluster.
"""

from __future__ import annotations

import logging

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._kafka import publish_confirmed, records_of
from kura_stream.service.naming import name_if_due
from kura_stream.service.runtime import Runtime
from kura_stream.types import ClusterEvent, ClusterEventKind

logger = logging.getLogger(__name__)

_NAME_ON = {ClusterEventKind.CREATED, ClusterEventKind.GROWN}


def register(rt: Runtime) -> None:
    """Subscribe the naming handler on rt.broker."""
    kafka = rt.settings.kafka

    @rt.broker.subscriber(
        kafka.topic_cluster_events,
        group_id=f"{kafka.group_id}-name",
        batch=True,
        max_records=64,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def name(msg: KafkaMessage) -> None:
        raw = records_of(msg)
        due: list[str] = []
        for record in raw:
            try:
                event = ClusterEvent.model_validate_json(record.value or b"")
            except ValidationError:
                logger.warning("ignoring a malformed cluster event at offset %s", record.offset)
                continue
            if event.kind in _NAME_ON and event.cluster_id and event.cluster_id not in due:
                due.append(event.cluster_id)
        renamed: list[ClusterEvent] = []
        for cluster_id in due:
            named = await name_if_due(
                rt.store,
                cluster_id,
                namer=rt.namer,
                min_size_shown=rt.settings.clustering.min_cluster_size_shown,
                write_lock=rt.write_lock,
            )
            if named is not None:
                renamed.append(named)
                rt.metrics.renamed.inc()
        await publish_confirmed(
            rt.broker,
            kafka.topic_cluster_events,
            [(e.cluster_id, e.model_dump_json().encode()) for e in renamed],
        )
