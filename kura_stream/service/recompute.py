"""Full recompute: recluster every stored embedding, rebuild the hierarchy and the map.

Computed on a snapshot without blocking the stream; applied under the write lock, where
conversations that arrived meanwhile are placed on the new centroids. Old cluster ids are
matched to new clusters by shared members, so a cluster keeps its identity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import ClusterNamer, ClusterStore, ParentNamer
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint, NamerKind
from kura_stream.service.matching import Matching, match_clusters
from kura_stream.service.naming import namer_kind, settle_name
from kura_stream.stages.choose_k import MIN_CLUSTERS, PER_CLUSTER, base_k
from kura_stream.stages.cluster import normalise
from kura_stream.stages.hierarchy import Embed, build_hierarchy
from kura_stream.stages.name import ClusterGroup, name_clusters
from kura_stream.stages.offline_namer import FALLBACK_NAME
from kura_stream.stages.project import UmapProjector, project_clusters
from kura_stream.stages.spherical_kmeans import recluster
from kura_stream.types import (
    Cluster,
    ClusterEvent,
    ClusterEventKind,
    HierarchyGrouping,
    Summary,
)

logger = logging.getLogger(__name__)

CLUSTER_META_FIELDS = ("name", "description", "slug", "count", "parent_id", "level", "x", "y")
"""The fields a recompute's Cluster gives a stored cluster's meta."""


@dataclass(frozen=True)
class RecomputeParams:
    """How a recompute clusters.

    Attributes:
        k: Base clusters wanted; None: chosen from the data (base_k: the best silhouette
            between min_clusters and one cluster per `per_cluster` conversations, at most
            max_clusters).
        per_cluster: Fewest conversations per base cluster a chosen k allows.
        min_clusters: Fewest base clusters a chosen k gives, where there are enough
            conversations.
        max_clusters: Most base clusters a chosen k gives; when the stream has built more,
            the largest keep their ids and the others merge into their nearest.
        fit_sample: k-means is fitted on at most this many conversations (a seeded sample),
            then every conversation joins its nearest centroid: time and memory stay bounded.
        top_level: Top-level clusters of the hierarchy.
        grouping: How the hierarchy forms parents (see build_hierarchy).
        min_size_shown: Clusters smaller than this are never shown by name.
        seed: Seed of k-means, naming samples, hierarchy and map.
    """

    k: int | None = None
    per_cluster: int = PER_CLUSTER
    min_clusters: int = MIN_CLUSTERS
    max_clusters: int = 2000
    fit_sample: int = 50_000
    top_level: int = 10
    grouping: HierarchyGrouping = "names"
    min_size_shown: int = 5
    seed: int = 0


@dataclass
class RecomputePlan:
    """What a recompute computed, ready to apply."""

    snapshot: dict[str, str | None]
    base_centroids: dict[str, npt.NDArray[np.float32]]
    labels: dict[str, str]
    clusters: list[Cluster]
    matching: Matching
    events: list[ClusterEvent] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per step: snapshot, kmeans, naming, hierarchy, map."""
    named: set[str] = field(default_factory=set)
    """Base clusters this recompute named; the others kept their stored names."""
    namer: NamerKind = "offline"
    """Kind of the namer that named them, stored with their names (see service/naming.py)."""


class _Member(NamedTuple):
    """What a recompute keeps of a stored conversation besides its row of the vectors.

    Not the whole payload, nor a second copy of the vector, for the recompute's length.
    """

    chat_id: str
    cluster_id: str | None
    summary: Any


def _snapshot(store: ClusterStore) -> tuple[list[_Member], npt.NDArray[np.float32]]:
    members: list[_Member] = []
    blocks: list[npt.NDArray[np.float32]] = []
    for batch in store.iter_conversations(batch_size=2000):
        if not batch:
            continue
        blocks.append(np.stack([p.vector for p in batch]).astype(np.float32))
        members.extend(_Member(p.chat_id, p.cluster_id, p.payload.get("summary")) for p in batch)
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, store.dim), np.float32)
    return members, vectors


def _summary(member: _Member) -> Summary:
    if isinstance(member.summary, dict):
        return Summary.model_validate(member.summary)
    return Summary(chat_id=member.chat_id, summary="")


async def plan_recompute(
    store: ClusterStore,
    *,
    namer: ClusterNamer,
    parent_namer: ParentNamer,
    embed: Embed,
    params: RecomputeParams,
    request_id: str | None = None,
) -> RecomputePlan | None:
    """Compute new base clusters, names, hierarchy and map from a snapshot of the store.

    Returns:
        The plan, or None when the store holds fewer than two conversations.
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    lap = started

    def mark(phase: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        phases[phase] = now - lap
        lap = now

    points, vectors = await asyncio.to_thread(_snapshot, store)
    if len(points) < 2:
        return None
    mark("snapshot")
    old = {p.chat_id: p.cluster_id for p in points}
    stored = {c.cluster_id: c for c in store.list_clusters()}
    base_old = {cid: c for cid, c in stored.items() if c.meta.level == 0}
    if params.k is None:
        k = await asyncio.to_thread(
            base_k,
            vectors,
            per_cluster=params.per_cluster,
            min_clusters=params.min_clusters,
            max_clusters=params.max_clusters,
            seed=params.seed,
        )
    else:
        k = params.k
    k = max(1, min(k, len(points)))
    # Largest first: when k is below the current number, the small ones are the ones merged.
    by_size = sorted(base_old.values(), key=lambda c: -c.meta.count)
    labels_array = await asyncio.to_thread(
        recluster,
        vectors,
        [c.centroid for c in by_size],
        k,
        seed=params.seed,
        fit_sample=params.fit_sample,
    )
    raw_labels = [int(x) for x in labels_array]
    mark("kmeans")
    matching = match_clusters(old, dict(zip(old, raw_labels, strict=True)))
    labels = {chat_id: matching.ids[lbl] for chat_id, lbl in zip(old, raw_labels, strict=True)}

    members: dict[str, list[int]] = {}
    for i, chat_id in enumerate(old):
        members.setdefault(labels[chat_id], []).append(i)
    groups = [
        ClusterGroup(
            cluster_id=cid,
            members=[_summary(points[i]) for i in rows],
            vectors=vectors[rows],
        )
        for cid, rows in members.items()
    ]
    # A cluster that keeps its id keeps its name, unless that name is the fallback: a cluster
    # named "Miscellaneous requests" when it was small gets another look with its new members.
    keep_names = {
        cid: base_old[cid].meta
        for cid in members
        if cid in base_old and base_old[cid].meta.name not in ("", FALLBACK_NAME)
    }
    to_name = [g for g in groups if g.cluster_id not in keep_names]
    named = await name_clusters(to_name, namer=namer, seed=params.seed) if to_name else []
    labels_by_id = {n.cluster_id: n.label for n in named}
    base: list[Cluster] = []
    centroids: dict[str, npt.NDArray[np.float32]] = {}
    for g in groups:
        centre = normalise(g.vectors.mean(axis=0, keepdims=True))[0]
        centroids[g.cluster_id] = centre
        if g.cluster_id in keep_names:
            kept = keep_names[g.cluster_id]
            name, description, slug = kept.name, kept.description, kept.slug
        else:
            label = labels_by_id[g.cluster_id]
            name, description, slug = label.name, label.description, label.slug
        base.append(
            Cluster(
                id=g.cluster_id, name=name, description=description, slug=slug, count=len(g.members)
            )
        )
    mark("naming")
    hierarchy = await build_hierarchy(
        base,
        centroids,
        namer=parent_namer,
        embed=embed,
        max_top=params.top_level,
        seed=params.seed,
        grouping=params.grouping,
    )
    mark("hierarchy")
    projector = UmapProjector(seed=params.seed)
    clusters = await asyncio.to_thread(
        project_clusters, hierarchy.clusters, hierarchy.centroids, projector=projector
    )
    mark("map")
    plan = RecomputePlan(
        snapshot=old,
        base_centroids=centroids,
        labels=labels,
        clusters=list(clusters),
        matching=matching,
        seconds=time.perf_counter() - started,
        phases=phases,
    )
    logger.info(
        "recompute planned in %.1fs (%s) for %d conversations, %d base clusters",
        plan.seconds,
        ", ".join(f"{name} {sec:.1f}s" for name, sec in phases.items()),
        len(points),
        len(centroids),
    )
    plan.named, plan.namer = set(labels_by_id), namer_kind(namer)
    plan.events = _events(plan, request_id, named_ids=plan.named, kept=set(keep_names))
    return plan


def _events(
    plan: RecomputePlan, request_id: str | None, *, named_ids: set[str], kept: set[str]
) -> list[ClusterEvent]:
    counts = {c.id: c.count for c in plan.clusters}
    names = {c.id: c.name for c in plan.clusters}
    events: list[ClusterEvent] = []
    for cid in plan.matching.created:
        events.append(
            ClusterEvent(
                kind=ClusterEventKind.CREATED,
                cluster_id=cid,
                count=counts[cid],
                name=names[cid],
                request_id=request_id,
            )
        )
    for new_id, old_id in plan.matching.split_from.items():
        events.append(
            ClusterEvent(
                kind=ClusterEventKind.SPLIT,
                cluster_id=old_id,
                related=(new_id,),
                count=counts.get(old_id),
                request_id=request_id,
            )
        )
    for old_id, new_id in plan.matching.merged_into.items():
        events.append(
            ClusterEvent(
                kind=ClusterEventKind.MERGED,
                cluster_id=new_id,
                related=(old_id,),
                count=counts.get(new_id),
                request_id=request_id,
            )
        )
    for cid in sorted(named_ids - set(plan.matching.created) - set(plan.matching.split_from)):
        events.append(
            ClusterEvent(
                kind=ClusterEventKind.RENAMED,
                cluster_id=cid,
                name=names[cid],
                count=counts[cid],
                request_id=request_id,
            )
        )
    top = sum(1 for c in plan.clusters if c.parent_id is None)
    events.append(
        ClusterEvent(
            kind=ClusterEventKind.HIERARCHY_UPDATED,
            request_id=request_id,
            detail={"clusters": len(plan.clusters), "top_level": top},
        )
    )
    events.append(
        ClusterEvent(
            kind=ClusterEventKind.MAP_UPDATED,
            request_id=request_id,
            detail={"points": len(plan.clusters)},
        )
    )
    return events  # fmt: skip


def apply_recompute(store: ClusterStore, plan: RecomputePlan) -> int:
    """Write a plan: cluster records replaced, every conversation's cluster_id updated.

    Conversations stored after the snapshot are placed on the nearest new base centroid.
    Call under the write lock, then reload the assigner.

    Returns:
        The number of conversations that arrived during the recompute.
    """
    ids = list(plan.base_centroids)
    matrix = np.stack([plan.base_centroids[i] for i in ids])
    changed: list[ConversationPoint] = []
    late = 0
    # Every stored conversation gets a base cluster here, and nothing else writes under the
    # lock: the counts follow from this one pass.
    counts: dict[str, int] = {}
    for batch in store.iter_conversations(batch_size=2000):
        for p in batch:
            target = plan.labels.get(p.chat_id)
            if target is None:
                late += 1
                target = ids[int(np.argmax(matrix @ normalise(p.vector[None, :])[0]))]
            counts[target] = counts.get(target, 0) + 1
            if target != p.cluster_id:
                changed.append(
                    ConversationPoint(
                        chat_id=p.chat_id, vector=p.vector, cluster_id=target, payload=p.payload
                    )
                )
    for start in range(0, len(changed), 2000):
        store.upsert_conversations(changed[start : start + 2000])
    previous = {c.cluster_id: c.meta for c in store.list_clusters()}
    records = []
    for c in plan.clusters:
        meta = _applied_meta(c, previous.get(c.id), counts.get(c.id, 0), plan)
        centroid = plan.base_centroids.get(c.id)
        if centroid is None:
            centroid = _meta_centroid(c.id, plan)
        records.append(ClusterPoint(cluster_id=c.id, centroid=centroid, meta=meta))
    store.upsert_clusters(records)
    stale = [cid for cid in previous if cid not in {c.id for c in plan.clusters}]
    store.delete_clusters(stale)
    return late  # fmt: skip


def _applied_meta(
    cluster: Cluster, stored: ClusterMeta | None, count: int, plan: RecomputePlan
) -> ClusterMeta:
    """A cluster's meta as a recompute writes it: the plan's fields over what is stored.

    A base cluster counts the members the apply placed in it; one new to the store starts
    named and announced at that count.
    """
    fields = {k: getattr(cluster, k) for k in CLUSTER_META_FIELDS}
    meta = (stored or ClusterMeta()).model_copy(update=fields)
    if cluster.level != 0:
        return meta
    update: dict[str, int] = {"count": count}
    if stored is None:
        update |= {"named_count": count, "announced_count": count}
    meta = meta.model_copy(update=update)
    return settle_name(meta, stored, named=cluster.id in plan.named, by=plan.namer)


def _meta_centroid(cluster_id: str, plan: RecomputePlan) -> npt.NDArray[np.float32]:
    children: dict[str | None, list[Cluster]] = {}
    for c in plan.clusters:
        children.setdefault(c.parent_id, []).append(c)
    total = np.zeros_like(next(iter(plan.base_centroids.values())), dtype=np.float64)
    stack = [cluster_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child.id in plan.base_centroids:
                total += plan.base_centroids[child.id] * max(child.count, 1)
            else:
                stack.append(child.id)
    unit: npt.NDArray[np.float32] = normalise(total[None, :].astype(np.float32))[0]
    return unit
