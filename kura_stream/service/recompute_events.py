"""The cluster events a recompute publishes: what it created, split, merged, renamed, redrew."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from kura_stream.service.matching import Matching
from kura_stream.types import Cluster, ClusterEvent, ClusterEventKind


def recompute_events(
    clusters: Sequence[Cluster],
    matching: Matching,
    *,
    named: set[str],
    request_id: str | None,
) -> list[ClusterEvent]:
    """The events of a planned recompute, each carrying the command's request_id.

    Args:
        clusters: The planned clusters, every level.
        matching: How the new base clusters relate to the old ones.
        named: Base clusters the recompute named; those neither created nor split off are
            announced as renamed.
        request_id: The recompute command's id.

    Returns:
        created, split, merged and renamed events, then hierarchy_updated and map_updated.
    """
    counts = {c.id: c.count for c in clusters}
    names = {c.id: c.name for c in clusters}
    event = partial(ClusterEvent, request_id=request_id)
    kind = ClusterEventKind
    events = [
        event(kind=kind.CREATED, cluster_id=cid, count=counts[cid], name=names[cid])
        for cid in matching.created
    ]
    events += [
        event(kind=kind.SPLIT, cluster_id=old_id, related=(new_id,), count=counts.get(old_id))
        for new_id, old_id in matching.split_from.items()
    ]
    events += [
        event(kind=kind.MERGED, cluster_id=new_id, related=(old_id,), count=counts.get(new_id))
        for old_id, new_id in matching.merged_into.items()
    ]
    renamed = sorted(named - set(matching.created) - set(matching.split_from))
    events += [
        event(kind=kind.RENAMED, cluster_id=cid, name=names[cid], count=counts[cid])
        for cid in renamed
    ]
    top = sum(1 for c in clusters if c.parent_id is None)
    detail = {"clusters": len(clusters), "top_level": top}
    events.append(event(kind=kind.HIERARCHY_UPDATED, detail=detail))
    events.append(event(kind=kind.MAP_UPDATED, detail={"points": len(clusters)}))
    return events
