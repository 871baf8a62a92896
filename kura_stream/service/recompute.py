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
from kura_stream.service.recompute_events import recompute_events
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


class _Stopwatch:
    """Seconds spent in each phase of a recompute, one lap per phase."""

    def __init__(self) -> None:
        self.started = self.lap = time.perf_counter()
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        """Close the current phase under this name."""
        now = time.perf_counter()
        self.phases[phase] = now - self.lap
        self.lap = now

    def elapsed(self) -> float:
        """Seconds since the recompute started."""
        return time.perf_counter() - self.started


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
    clock = _Stopwatch()
    points, vectors = await asyncio.to_thread(_snapshot, store)
    if len(points) < 2:
        return None
    clock.mark("snapshot")
    old = {p.chat_id: p.cluster_id for p in points}
    base_old = {c.cluster_id: c for c in store.list_clusters() if c.meta.level == 0}
    raw_labels = await _kmeans(vectors, base_old, params)
    clock.mark("kmeans")
    matching = match_clusters(old, dict(zip(old, raw_labels, strict=True)))
    labels = {chat_id: matching.ids[lbl] for chat_id, lbl in zip(old, raw_labels, strict=True)}
    base = await _name_base(_groups(points, vectors, labels), base_old, namer, params.seed)
    clock.mark("naming")
    hierarchy = await build_hierarchy(
        base.clusters,
        base.centroids,
        namer=parent_namer,
        embed=embed,
        max_top=params.top_level,
        seed=params.seed,
        grouping=params.grouping,
    )
    clock.mark("hierarchy")
    projector = UmapProjector(seed=params.seed)
    clusters = await asyncio.to_thread(
        project_clusters, hierarchy.clusters, hierarchy.centroids, projector=projector
    )
    clock.mark("map")
    plan = RecomputePlan(
        snapshot=old,
        base_centroids=base.centroids,
        labels=labels,
        clusters=list(clusters),
        matching=matching,
        seconds=clock.elapsed(),
        phases=clock.phases,
    )
    _log_plan(plan, conversations=len(points))
    plan.named, plan.namer = base.named, namer_kind(namer)
    plan.events = recompute_events(
        plan.clusters, plan.matching, named=plan.named, request_id=request_id
    )
    return plan


async def _kmeans(
    vectors: npt.NDArray[np.float32], base_old: dict[str, ClusterPoint], params: RecomputeParams
) -> list[int]:
    """Each conversation's new base-cluster label, seeded from the stored base centroids."""
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
    k = max(1, min(k, len(vectors)))
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
    return [int(x) for x in labels_array]


def _groups(
    points: list[_Member], vectors: npt.NDArray[np.float32], labels: dict[str, str]
) -> list[ClusterGroup]:
    """The new base clusters with their members' summaries and vectors.

    `labels` holds the snapshot's chat_ids in snapshot order, so its positions are rows.
    """
    members: dict[str, list[int]] = {}
    for i, chat_id in enumerate(labels):
        members.setdefault(labels[chat_id], []).append(i)
    return [
        ClusterGroup(
            cluster_id=cid,
            members=[_summary(points[i]) for i in rows],
            vectors=vectors[rows],
        )
        for cid, rows in members.items()
    ]


class _BaseClusters(NamedTuple):
    """A recompute's named base clusters, their centroids, and the ids it named."""

    clusters: list[Cluster]
    centroids: dict[str, npt.NDArray[np.float32]]
    named: set[str]


async def _name_base(
    groups: list[ClusterGroup],
    base_old: dict[str, ClusterPoint],
    namer: ClusterNamer,
    seed: int,
) -> _BaseClusters:
    """Name the new base clusters, keeping the stored name of each that keeps its id."""
    # A cluster that keeps its id keeps its name, unless that name is the fallback: a cluster
    # named "Miscellaneous requests" when it was small gets another look with its new members.
    kept = {
        g.cluster_id: base_old[g.cluster_id].meta
        for g in groups
        if g.cluster_id in base_old and base_old[g.cluster_id].meta.name not in ("", FALLBACK_NAME)
    }
    to_name = [g for g in groups if g.cluster_id not in kept]
    named = await name_clusters(to_name, namer=namer, seed=seed) if to_name else []
    labels = {n.cluster_id: n.label for n in named}
    base = _BaseClusters([], {}, set(labels))
    for g in groups:
        base.centroids[g.cluster_id] = normalise(g.vectors.mean(axis=0, keepdims=True))[0]
        source = kept[g.cluster_id] if g.cluster_id in kept else labels[g.cluster_id]
        base.clusters.append(
            Cluster(
                id=g.cluster_id,
                name=source.name,
                description=source.description,
                slug=source.slug,
                count=len(g.members),
            )
        )
    return base


def _log_plan(plan: RecomputePlan, *, conversations: int) -> None:
    logger.info(
        "recompute planned in %.1fs (%s) for %d conversations, %d base clusters",
        plan.seconds,
        ", ".join(f"{name} {sec:.1f}s" for name, sec in plan.phases.items()),
        conversations,
        len(plan.base_centroids),
    )


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
