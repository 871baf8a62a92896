"""Name one live cluster when it is new or has doubled since it was last named."""

from __future__ import annotations

import asyncio
import logging

from kura_stream.protocols import ClusterNamer, ClusterStore
from kura_stream.records import ClusterPoint, ConversationPoint
from kura_stream.types import ClusterEvent, ClusterEventKind, Summary

logger = logging.getLogger(__name__)

MAX_MEMBERS = 50
MAX_CONTRAST = 50
CONTRAST_CLUSTERS = 5


def _summaries(points: list[ConversationPoint]) -> list[Summary]:
    out = []
    for p in points:
        data = p.payload.get("summary")
        if isinstance(data, dict):
            out.append(Summary.model_validate(data))
    return out


def naming_due(payload: dict[str, object], *, min_size_shown: int) -> bool:
    """Whether a cluster should be (re)named: big enough to show, and unnamed or doubled."""
    count = int(str(payload.get("count") or 0))
    named_count = int(str(payload.get("named_count") or 0))
    if count < min_size_shown:
        return False
    return not payload.get("name") or count >= 2 * named_count


async def name_if_due(
    store: ClusterStore,
    cluster_id: str,
    *,
    namer: ClusterNamer,
    min_size_shown: int,
    write_lock: asyncio.Lock,
) -> ClusterEvent | None:
    """Name the cluster if due; returns the renamed event, or None when nothing was done."""
    found = store.get_clusters([cluster_id])
    if not found:
        return None
    cluster = found[0]
    if not naming_due(dict(cluster.payload), min_size_shown=min_size_shown):
        return None
    members = _summaries(list(store.conversations_in_cluster(cluster_id, MAX_MEMBERS)))
    contrast: list[Summary] = []
    for hit in store.search_clusters(cluster.centroid, CONTRAST_CLUSTERS + 1):
        if hit.id == cluster_id or len(contrast) >= MAX_CONTRAST:
            continue
        per = MAX_CONTRAST // CONTRAST_CLUSTERS
        contrast += _summaries(list(store.conversations_in_cluster(hit.id, per)))
    label = await namer.label(members, contrast[:MAX_CONTRAST])
    async with write_lock:
        current = store.get_clusters([cluster_id])
        if not current:
            return None  # merged away by a recompute meanwhile
        payload = dict(current[0].payload)
        payload.update(
            name=label.name,
            description=label.description,
            slug=label.slug,
            named_count=int(payload.get("count") or 0),
        )
        store.upsert_clusters(
            [ClusterPoint(cluster_id=cluster_id, centroid=current[0].centroid, payload=payload)]
        )
    logger.info("named cluster %s: %s", cluster_id, label.name)
    return ClusterEvent(
        kind=ClusterEventKind.RENAMED,
        cluster_id=cluster_id,
        count=int(payload["count"]),
        name=label.name,
    )
