"""The read side of the running service: status, clusters and details from the store."""

from __future__ import annotations

import uuid
from collections import deque

from kura_stream.privacy import is_shown
from kura_stream.records import ClusterPoint
from kura_stream.service.api_models import (
    ClusterDetail,
    ClusterView,
    RecomputeStatus,
    ServiceStatus,
)
from kura_stream.service.runtime import Runtime
from kura_stream.types import Summary

HISTORY_POINTS = 30
"""Count samples kept per cluster for sparklines."""


def cluster_view(
    point: ClusterPoint, *, min_size_shown: int, history: tuple[int, ...] = ()
) -> ClusterView:
    """A stored cluster as the API shows it; small clusters lose their name (Clio's floor)."""
    meta = point.meta
    cluster = meta.cluster(point.cluster_id)
    visible = is_shown(cluster, min_size_shown)
    return ClusterView(
        id=cluster.id,
        name=cluster.name if visible else "",
        description=cluster.description if visible else "",
        slug=cluster.slug if visible else "",
        count=cluster.count,
        parent_id=cluster.parent_id,
        level=cluster.level,
        x=cluster.x,
        y=cluster.y,
        created_at=meta.created_at,
        history=history,
        visible=visible,
        named_by=meta.namer if meta.namer and meta.name else None,
    )


def status(rt: Runtime) -> ServiceStatus:
    """Counts and health now."""
    try:
        conversations = rt.store.count_conversations()
        rt.store_ok = True
    except Exception:
        conversations = rt.assigner.state.total
        rt.store_ok = False
    return ServiceStatus(
        conversations=conversations,
        clusters=len(rt.assigner.state.ids),
        outliers=rt.assigner.state.outliers_total,
        dlq=rt.dead_letters,
        lag=rt.lag,
        throughput_per_s=round(rt.metrics.throughput_per_s(), 2),
        last_recompute_at=rt.last_recompute_at,
        recompute_running=rt.recompute_lock.locked(),
        broker_ok=rt.broker_ok,
        store_ok=rt.store_ok,
        llm_ok=rt.llm_ok,
        started_at=rt.started_at,
        duplicates=rt.duplicates,
    )


def clusters(rt: Runtime) -> list[ClusterView]:
    """Every cluster, largest first."""
    shown = rt.settings.clustering.min_cluster_size_shown
    views = [
        cluster_view(c, min_size_shown=shown, history=tuple(rt.history.get(c.cluster_id, ())))
        for c in rt.store.list_clusters()
    ]
    return sorted(views, key=lambda v: (-v.count, v.id))


def cluster_detail(rt: Runtime, cluster_id: str, *, sample: int = 5) -> ClusterDetail:
    """One cluster, its children and a few member summaries (raises KeyError if unknown)."""
    found = rt.store.get_clusters([cluster_id])
    if not found:
        raise KeyError(cluster_id)
    all_clusters = rt.store.list_clusters()
    children = tuple(c.cluster_id for c in all_clusters if c.meta.parent_id == cluster_id)
    shown = rt.settings.clustering.min_cluster_size_shown
    view = cluster_view(found[0], min_size_shown=shown)
    summaries: list[Summary] = []
    if view.visible:
        base_ids = [cluster_id] if view.level == 0 else _base_descendants(cluster_id, all_clusters)
        for base_id in base_ids:
            for p in rt.store.conversations_in_cluster(base_id, sample - len(summaries)):
                data = p.payload.get("summary")
                if isinstance(data, dict):
                    summaries.append(Summary.model_validate(data))
            if len(summaries) >= sample:
                break
    return ClusterDetail(cluster=view, children=children, sample=tuple(summaries[:sample]))


def _base_descendants(cluster_id: str, all_clusters: list[ClusterPoint]) -> list[str]:
    by_parent: dict[str, list[ClusterPoint]] = {}
    for c in all_clusters:
        if c.meta.parent_id is not None:
            by_parent.setdefault(c.meta.parent_id, []).append(c)
    out, stack = [], [cluster_id]
    while stack:
        for child in sorted(by_parent.get(stack.pop(), []), key=lambda c: -c.meta.count):
            if child.meta.level == 0:
                out.append(child.cluster_id)
            else:
                stack.append(child.cluster_id)
    return out


def sample_history(rt: Runtime) -> None:
    """Record every cluster's count once (called on a timer, for the growth sparklines)."""
    for c in rt.store.list_clusters():
        rt.history.setdefault(c.cluster_id, deque(maxlen=HISTORY_POINTS)).append(c.meta.count)


def new_request_id() -> str:
    """A fresh recompute request id."""
    return uuid.uuid4().hex


def recompute_status(rt: Runtime, request_id: str) -> RecomputeStatus:
    """Where a recompute request is (raises KeyError if unknown)."""
    return rt.recomputes[request_id]
