"""The read side of the running service: status, clusters and details from the store."""

from __future__ import annotations

import uuid

from kura_stream.privacy import is_shown
from kura_stream.records import ClusterPoint
from kura_stream.service.api_models import (
    ClusterDetail,
    ClusterView,
    RecomputeStatus,
    ServiceStatus,
)
from kura_stream.service.stream import StreamService
from kura_stream.types import Summary


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


def status(service: StreamService) -> ServiceStatus:
    """Counts and health now (a store that does not answer marks the store down)."""
    metrics, state = service.metrics, service.assigner.state
    try:
        conversations = service.store.count_conversations()
        metrics.store_ok = True
    except Exception:
        conversations = state.total
        metrics.store_ok = False
    return ServiceStatus(
        conversations=conversations,
        clusters=len(state.ids),
        outliers=state.outliers_total,
        dlq=metrics.dead_letters_total,
        lag=metrics.lag,
        throughput_per_s=round(metrics.throughput_per_s(), 2),
        last_recompute_at=metrics.last_recompute_at,
        recompute_running=service.recomputer.running,
        broker_ok=metrics.broker_ok,
        store_ok=metrics.store_ok,
        llm_ok=metrics.llm_ok,
        started_at=metrics.started_at,
        duplicates=metrics.duplicates_total,
    )


def clusters(service: StreamService) -> list[ClusterView]:
    """Every cluster, largest first."""
    shown = service.settings.clustering.min_cluster_size_shown
    history = service.metrics.history
    views = [
        cluster_view(c, min_size_shown=shown, history=tuple(history.get(c.cluster_id, ())))
        for c in service.store.list_clusters()
    ]
    return sorted(views, key=lambda v: (-v.count, v.id))


def cluster_detail(service: StreamService, cluster_id: str, *, sample: int = 5) -> ClusterDetail:
    """One cluster, its children and a few member summaries (raises KeyError if unknown)."""
    found = service.store.get_clusters([cluster_id])
    if not found:
        raise KeyError(cluster_id)
    all_clusters = service.store.list_clusters()
    children = tuple(c.cluster_id for c in all_clusters if c.meta.parent_id == cluster_id)
    shown = service.settings.clustering.min_cluster_size_shown
    view = cluster_view(found[0], min_size_shown=shown)
    summaries: list[Summary] = []
    if view.visible:
        base_ids = [cluster_id] if view.level == 0 else _base_descendants(cluster_id, all_clusters)
        for base_id in base_ids:
            for p in service.store.conversations_in_cluster(base_id, sample - len(summaries)):
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


def new_request_id() -> str:
    """A fresh recompute request id."""
    return uuid.uuid4().hex


def recompute_status(service: StreamService, request_id: str) -> RecomputeStatus:
    """Where a recompute request is (raises KeyError if unknown)."""
    return service.recomputer.requests[request_id]
