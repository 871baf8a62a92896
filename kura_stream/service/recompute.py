"""Full recompute: recluster every stored embedding, rebuild the hierarchy and the map.

Computed on a snapshot read in blocks, without blocking the stream; applied (see
recompute_apply.py) by moving the snapshot's conversations outside the write lock, then, under
it, placing what arrived meanwhile on the new centroids. Old cluster ids are matched to new
clusters by shared members, so a cluster keeps its identity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from kura_stream.protocols import ClusterNamer, ClusterStore, ParentNamer
from kura_stream.records import ClusterPoint
from kura_stream.service.matching import Matching, match_clusters
from kura_stream.service.naming import namer_kind
from kura_stream.service.recompute_apply import apply_recompute
from kura_stream.service.recompute_events import recompute_events
from kura_stream.service.recompute_snapshot import (
    ROWS,
    RecomputePlan,
    Snapshot,
    StoredSummaries,
    read_snapshot,
    release_memory,
)
from kura_stream.stages.choose_k import MIN_CLUSTERS, PER_CLUSTER, SAMPLE, choose_k, k_bound
from kura_stream.stages.cluster import normalise
from kura_stream.stages.hierarchy import Embed, build_hierarchy
from kura_stream.stages.name import ClusterGroup, name_clusters, sample_for_naming, stable_seed
from kura_stream.stages.offline_namer import FALLBACK_NAME
from kura_stream.stages.project import UmapProjector, project_clusters
from kura_stream.stages.spherical_kmeans import recluster
from kura_stream.types import Cluster, HierarchyGrouping

__all__ = ["RecomputeParams", "RecomputePlan", "apply_recompute", "plan_recompute"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        naming_rows: A base cluster to name is sampled from at most this many members (a
            seeded sample of a larger one), whose vectors are copied and whose summaries are
            read only for those the namer sees.
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
    naming_rows: int = 400
    top_level: int = 10
    grouping: HierarchyGrouping = "names"
    min_size_shown: int = 5
    seed: int = 0


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
    snap = await asyncio.to_thread(read_snapshot, store)
    if len(snap) < 2:
        return None
    release_memory()
    clock.mark("snapshot")
    base_old = {c.cluster_id: c for c in store.list_clusters() if c.meta.level == 0}
    matching, labels, ids = await _new_labels(snap, base_old, params)
    clock.mark("kmeans")
    base = await _name_base(
        _Labelled(store, snap, labels, ids), base_old, namer, params.seed, params.naming_rows
    )
    release_memory()
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
        snapshot=snap,
        labels=labels,
        ids=ids,
        counts=np.bincount(labels, minlength=len(ids)).astype(np.int64),
        base_centroids=base.centroids,
        clusters=list(clusters),
        matching=matching,
        seconds=clock.elapsed(),
        phases=clock.phases,
    )
    _log_plan(plan, conversations=len(snap))
    plan.named, plan.namer = base.named, namer_kind(namer)
    plan.events = recompute_events(
        plan.clusters, plan.matching, named=plan.named, request_id=request_id
    )
    return plan


async def _new_labels(
    snap: Snapshot, base_old: dict[str, ClusterPoint], params: RecomputeParams
) -> tuple[Matching, npt.NDArray[np.intp], list[str]]:
    """k-means, then old ids matched to the new clusters (see _match)."""
    raw_labels = await _kmeans(snap.vectors, base_old, params)
    matched = await asyncio.to_thread(_match, snap, raw_labels)
    del raw_labels
    snap.drop_index()  # built again by the apply, after the map's peak
    release_memory()
    return matched


async def _kmeans(
    vectors: npt.NDArray[np.float32], base_old: dict[str, ClusterPoint], params: RecomputeParams
) -> npt.NDArray[np.intp]:
    """Each conversation's new base-cluster label, seeded from the stored base centroids."""
    if params.k is None:
        k = await asyncio.to_thread(_chosen_k, vectors, params)
    else:
        k = params.k
    k = max(1, min(k, len(vectors)))
    # Largest first: when k is below the current number, the small ones are the ones merged.
    by_size = sorted(base_old.values(), key=lambda c: -c.meta.count)
    return await asyncio.to_thread(
        recluster,
        vectors,
        [c.centroid for c in by_size],
        k,
        seed=params.seed,
        fit_sample=params.fit_sample,
    )


def _chosen_k(vectors: npt.NDArray[np.float32], params: RecomputeParams) -> int:
    """base_k's choice, made on the rows it would sample (the whole array is never copied)."""
    n = len(vectors)
    upper = k_bound(n, params.per_cluster, params.max_clusters)
    rows = vectors
    if n > SAMPLE:  # the sample choose_k draws from these rows with this seed
        rng = np.random.default_rng(params.seed)
        rows = vectors[np.sort(rng.choice(n, size=SAMPLE, replace=False))]
    low = min(params.min_clusters, upper)
    return choose_k(rows, k_min=low, k_max=upper, seed=params.seed).k


def _match(
    snap: Snapshot, raw: npt.NDArray[np.intp]
) -> tuple[Matching, npt.NDArray[np.intp], list[str]]:
    """Old ids matched to the new labels; each row's label as an index into the ids."""
    matching = match_clusters(_Column(snap, snap.clusters), _Column(snap, raw.tolist()))
    present, labels = np.unique(raw, return_inverse=True)
    ids = [matching.ids[int(label)] for label in present]
    return matching, labels.astype(np.intp), ids


class _Column(Mapping[str, T]):
    """A snapshot column by chat id, looked up through the snapshot's index (no dict built)."""

    def __init__(self, snap: Snapshot, values: Sequence[T]) -> None:
        self._snap = snap
        self._values = values

    def __getitem__(self, chat_id: str) -> T:
        return self._values[self._snap.index()[chat_id]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._snap.chat_ids)

    def __len__(self) -> int:
        return len(self._values)


class _Labelled(NamedTuple):
    """A snapshot with its new labels, and the store its summaries come from."""

    store: ClusterStore
    snap: Snapshot
    labels: npt.NDArray[np.intp]
    ids: list[str]

    def members(self) -> list[npt.NDArray[np.intp]]:
        """Rows of each new base cluster (by label), ascending."""
        order = np.argsort(self.labels, kind="stable")
        ends = np.cumsum(np.bincount(self.labels, minlength=len(self.ids)))
        return np.split(order, ends[:-1])

    def centroids(self) -> npt.NDArray[np.float32]:
        """Unit mean of each new base cluster's members, summed a block of rows at a time."""
        sums = np.zeros((len(self.ids), self.snap.vectors.shape[1]))
        for start in range(0, len(self.labels), ROWS):
            rows = self.labels[start : start + ROWS]
            onehot = csr_matrix(
                (np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(self.ids), len(rows))
            )
            sums += onehot @ self.snap.vectors[start : start + ROWS].astype(np.float64)
        return normalise(sums.astype(np.float32))


class _BaseClusters(NamedTuple):
    """A recompute's named base clusters, their centroids, and the ids it named."""

    clusters: list[Cluster]
    centroids: dict[str, npt.NDArray[np.float32]]
    named: set[str]


async def _name_base(
    labelled: _Labelled,
    base_old: dict[str, ClusterPoint],
    namer: ClusterNamer,
    seed: int,
    naming_rows: int,
) -> _BaseClusters:
    """Name the new base clusters, keeping the stored name of each that keeps its id."""
    # A cluster that keeps its id keeps its name, unless that name is the fallback: a cluster
    # named "Miscellaneous requests" when it was small gets another look with its new members.
    kept = {
        cid: base_old[cid].meta
        for cid in labelled.ids
        if cid in base_old and base_old[cid].meta.name not in ("", FALLBACK_NAME)
    }
    rows = labelled.members()
    to_name = [j for j, cid in enumerate(labelled.ids) if cid not in kept]
    groups = await asyncio.to_thread(naming_groups, labelled, to_name, rows, seed, naming_rows)
    named = await name_clusters(groups, namer=namer, seed=seed) if groups else []
    labels = {n.cluster_id: n.label for n in named}
    centroids = await asyncio.to_thread(labelled.centroids)
    base = _BaseClusters([], {}, set(labels))
    for j, cid in enumerate(labelled.ids):
        base.centroids[cid] = centroids[j]
        source = kept[cid] if cid in kept else labels[cid]
        base.clusters.append(
            Cluster(
                id=cid,
                name=source.name,
                description=source.description,
                slug=source.slug,
                count=len(rows[j]),
            )
        )
    return base


def naming_groups(
    labelled: _Labelled,
    to_name: list[int],
    rows: list[npt.NDArray[np.intp]],
    seed: int,
    naming_rows: int,
) -> list[ClusterGroup]:
    """The groups to name, at most naming_rows members each (a seeded sample of a larger one).

    Their summaries are fetched from the store at once, for only the members a namer will see.
    """
    summaries = StoredSummaries(labelled.store)
    groups = []
    for j in to_name:
        members = rows[j]
        cid = labelled.ids[j]
        if len(members) > naming_rows:
            rng = np.random.default_rng([seed, stable_seed(cid)])
            members = np.sort(rng.choice(members, size=naming_rows, replace=False))
        chat_ids = [labelled.snap.chat_ids[i] for i in members.tolist()]
        groups.append(ClusterGroup(cid, summaries.view(chat_ids), labelled.snap.vectors[members]))
    summaries.prefetch(lambda: sample_for_naming(groups, seed=seed))
    return groups


def _log_plan(plan: RecomputePlan, *, conversations: int) -> None:
    logger.info(
        "recompute planned in %.1fs (%s) for %d conversations, %d base clusters",
        plan.seconds,
        ", ".join(f"{name} {sec:.1f}s" for name, sec in plan.phases.items()),
        conversations,
        len(plan.base_centroids),
    )
