"""Kura's procedural API, stage by stage, with checkpoints keyed by their input.

The function names are Kura's, so a Kura pipeline reads the same:

    summaries = await summarise_conversations(conversations, model=summariser, ...)
    base = await generate_base_clusters_from_conversation_summaries(summaries, ...)
    meta = await reduce_clusters_from_base_clusters(base, ...)
    projected = await reduce_dimensionality_from_clusters(meta, ...)
    visualise_clusters(projected)

Unlike Kura, a checkpoint is reused only for the exact input that produced it, and failures
are reported, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

from kura_stream.cache import Cache
from kura_stream.checkpoints import CheckpointStore, input_key
from kura_stream.protocols import ClusterNamer, Embedder, ParentNamer, Projector, Summariser
from kura_stream.stages.choose_k import base_k
from kura_stream.stages.cluster import Labels, hdbscan_clusters, kmeans_clusters, normalise
from kura_stream.stages.embed import embed_summaries, embed_texts
from kura_stream.stages.hierarchy import build_hierarchy
from kura_stream.stages.name import ClusterGroup, base_clusters, groups_from_labels, name_clusters
from kura_stream.stages.project import UmapProjector, project_clusters
from kura_stream.stages.summarise import summarise
from kura_stream.tree import render_tree
from kura_stream.types import Cluster, Conversation, HierarchyGrouping, Summary

KMEANS_RESTARTS = 3
"""k-means restarts of base clustering (Kura: 1): a bad start merges two topics and splits
another; three cost a fraction of a second beside the embedding."""


logger = logging.getLogger(__name__)


class BaseCluster(Cluster):
    """A base cluster with its members' chat ids, as Kura's Cluster carries them."""

    chat_ids: tuple[str, ...] = ()


Failure = tuple[str, str]
"""(chat_id, reason) of a conversation that could not be summarised."""


async def summarise_conversations(
    conversations: Sequence[Conversation],
    *,
    model: Summariser,
    cache: Cache | None = None,
    checkpoint_manager: CheckpointStore | None = None,
    concurrency: int = 2,
    progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[Sequence[Failure]], None] | None = None,
    checkpoint_name: str = "summaries",
) -> list[Summary]:
    """Summarise conversations (Clio's facets), from cache and checkpoint where they apply.

    Args:
        conversations: The conversations.
        model: The Summariser (LLM or offline).
        cache: Per-conversation cache (content hash + summariser name).
        checkpoint_manager: Stage checkpoints, reused only for this exact input.
        concurrency: Summaries in flight at once.
        progress: progress(done, total) after each conversation.
        on_failure: Receives the failures (chat_id, reason); they are also logged.
        checkpoint_name: The stage's checkpoint name (Kura: the model's checkpoint_filename).

    Returns:
        The summaries, in input order, without the failures.
    """
    key = input_key(records=conversations, models=[model.name])
    if checkpoint_manager is not None:
        cached = checkpoint_manager.load(checkpoint_name, key, Summary)
        if cached is not None:
            return cached
    result = await summarise(
        conversations, summariser=model, cache=cache, concurrency=concurrency, progress=progress
    )
    for chat_id, reason in result.failures:
        logger.warning("could not summarise %s: %s", chat_id, reason)
    if on_failure is not None and result.failures:
        on_failure(result.failures)
    if checkpoint_manager is not None:
        checkpoint_manager.save(checkpoint_name, key, result.summaries)
    return result.summaries


def _labels(
    vectors: npt.NDArray[np.float32],
    method: Literal["kmeans", "hdbscan"],
    k: int | Literal["auto"] | None,
    clusters_per_group: int,
    seed: int,
    hdbscan_options: Mapping[str, JsonValue] | None,
) -> Labels:
    """Each vector's base cluster, by k-means or HDBSCAN (see the caller's arguments)."""
    if method == "kmeans":
        if k == "auto":
            k = base_k(vectors, seed=seed)
        return kmeans_clusters(
            vectors, k=k, clusters_per_group=clusters_per_group, seed=seed, n_init=KMEANS_RESTARTS
        )
    return hdbscan_clusters(vectors, **dict(hdbscan_options or {}))  # type: ignore[arg-type]


async def _named(
    groups: Sequence[ClusterGroup],
    *,
    namer: ClusterNamer,
    fallback: ClusterNamer | None,
    seed: int,
) -> list[BaseCluster]:
    """Name each group (logging failures) and make it a BaseCluster with its members' ids."""
    named = await name_clusters(groups, namer=namer, seed=seed, fallback=fallback)
    for failed in (n for n in named if n.error):
        logger.warning("naming cluster %s failed: %s", failed.cluster_id, failed.error)
    clusters, _ = base_clusters(groups, named)
    return [
        BaseCluster(**c.model_dump(), chat_ids=tuple(s.chat_id for s in g.members))
        for c, g in zip(clusters, groups, strict=True)
    ]


async def generate_base_clusters_from_conversation_summaries(
    summaries: Sequence[Summary],
    *,
    embedder: Embedder,
    namer: ClusterNamer,
    fallback_namer: ClusterNamer | None = None,
    cache: Cache | None = None,
    checkpoint_manager: CheckpointStore | None = None,
    method: Literal["kmeans", "hdbscan"] = "kmeans",
    k: int | Literal["auto"] | None = None,
    clusters_per_group: int = 10,
    seed: int = 0,
    hdbscan_options: Mapping[str, JsonValue] | None = None,
    checkpoint_name: str = "base_clusters",
) -> list[BaseCluster]:
    """Embed summaries, cluster them and name each cluster (Clio's contrastive naming).

    Args:
        summaries: The summaries.
        embedder: Embeds each summary's own text.
        namer: Names a cluster from members and nearest non-members (bounded samples).
        fallback_namer: Used when the namer fails on a cluster (else a placeholder name).
        cache: Vector cache.
        checkpoint_manager: Stage checkpoints.
        method: k-means (Kura's default) or HDBSCAN (noise attached to its nearest cluster).
        k: k-means clusters; default Kura's ceil(n / clusters_per_group); "auto": chosen
            from the data (base_k: the best silhouette within bounds).
        clusters_per_group: Kura's target members per cluster.
        seed: Seed of k-means and of naming samples.
        hdbscan_options: Keyword arguments of stages.cluster.hdbscan_clusters
            (min_cluster_size, min_samples, ...), for method "hdbscan".
        checkpoint_name: The stage's checkpoint name (Kura: "clusters").

    Returns:
        Base clusters (level 0) with their members' chat ids.
    """
    params: dict[str, JsonValue] = {
        "method": method,
        "k": k,
        "per_group": clusters_per_group,
        "seed": seed,
        "hdbscan": dict(hdbscan_options or {}),
    }
    key = input_key(records=summaries, params=params, models=[embedder.name, namer.name])
    if checkpoint_manager is not None:
        cached = checkpoint_manager.load(checkpoint_name, key, BaseCluster)
        if cached is not None:
            return cached
    vectors = embed_summaries(summaries, embedder=embedder, cache=cache)
    labels = _labels(vectors, method, k, clusters_per_group, seed, hdbscan_options)
    groups = groups_from_labels(summaries, vectors, labels)
    result = await _named(groups, namer=namer, fallback=fallback_namer, seed=seed)
    if checkpoint_manager is not None:
        checkpoint_manager.save(checkpoint_name, key, result)
    return result


def _centroids(
    clusters: Sequence[Cluster],
    *,
    embedder: Embedder,
    summaries: Sequence[Summary] | None,
    cache: Cache | None,
    base_clusters: Sequence[BaseCluster] = (),
) -> dict[str, npt.NDArray[np.float32]]:
    """Member-mean centroids when members and summaries are known, else label embeddings."""
    by_chat = {s.chat_id: s for s in summaries or ()}
    member_ids = {c.id: c.chat_ids for c in base_clusters}
    member_ids |= {c.id: c.chat_ids for c in clusters if isinstance(c, BaseCluster)}
    out: dict[str, npt.NDArray[np.float32]] = {}
    for c in clusters:
        ids = member_ids.get(c.id, ())
        members = [by_chat[i] for i in ids if i in by_chat]
        if members:
            vectors = embed_summaries(members, embedder=embedder, cache=cache)
            out[c.id] = normalise(vectors.mean(axis=0, keepdims=True))[0]
    missing = [c for c in clusters if c.id not in out]
    if missing:  # Kura's way: embed "name: description"
        texts = [f"{c.name}: {c.description}" for c in missing]
        for c, v in zip(missing, embed_texts(texts, embedder=embedder, cache=cache), strict=True):
            out[c.id] = v
    return out


async def reduce_clusters_from_base_clusters(
    clusters: Sequence[Cluster],
    *,
    embedder: Embedder,
    parent_namer: ParentNamer,
    summaries: Sequence[Summary] | None = None,
    cache: Cache | None = None,
    checkpoint_manager: CheckpointStore | None = None,
    max_top: int = 10,
    seed: int = 0,
    grouping: HierarchyGrouping = "names",
    checkpoint_name: str = "meta_clusters",
) -> list[Cluster]:
    """Clio's meta-clustering up to at most `max_top` top-level clusters.

    Args:
        clusters: Base clusters (level 0).
        embedder: Embeds candidate names (and members, for centroids).
        parent_namer: Proposes, chooses and renames parents (LLM or offline).
        summaries: The members' summaries, for member-mean centroids (else labels are embedded).
        cache: Vector cache.
        checkpoint_manager: Stage checkpoints.
        max_top: Top-level clusters wanted at most.
        seed: Seed of neighbourhoods and candidate order.
        grouping: "names" (the namer chooses parents) or "centroids" (see build_hierarchy).
        checkpoint_name: The stage's checkpoint name.

    Returns:
        Base and meta clusters with parent_id and level set.
    """
    params = {"max_top": max_top, "seed": seed, "grouping": grouping}
    key = input_key(
        records=[*clusters, *(summaries or ())],
        params=params,
        models=[embedder.name, parent_namer.name],
    )
    if checkpoint_manager is not None:
        cached = checkpoint_manager.load(checkpoint_name, key, Cluster)
        if cached is not None:
            return cached
    base = [
        Cluster.model_validate(c.model_dump(include=set(Cluster.model_fields))) for c in clusters
    ]
    cents = _centroids(clusters, embedder=embedder, summaries=summaries, cache=cache)
    hierarchy = await build_hierarchy(
        base,
        cents,
        namer=parent_namer,
        embed=embedder.embed,
        max_top=max_top,
        seed=seed,
        grouping=grouping,
    )
    r = hierarchy.report
    message = "hierarchy: %d levels, %d rejected choices, %d fallbacks"
    logger.info(message, r.levels, r.rejections, r.fallbacks)
    if checkpoint_manager is not None:
        checkpoint_manager.save(checkpoint_name, key, hierarchy.clusters)
    return hierarchy.clusters


async def reduce_dimensionality_from_clusters(
    clusters: Sequence[Cluster],
    *,
    embedder: Embedder,
    summaries: Sequence[Summary] | None = None,
    base_clusters: Sequence[BaseCluster] = (),
    projector: Projector | None = None,
    cache: Cache | None = None,
    checkpoint_manager: CheckpointStore | None = None,
    seed: int = 0,
    checkpoint_name: str = "dimensionality",
) -> list[Cluster]:
    """Place every cluster on a 2-D map (UMAP of base centroids; parents at their children).

    Base centroids are the mean of their members' summary vectors when `summaries` and the
    members (`base_clusters`, or BaseCluster inputs) are given; else their labels' vectors.
    `checkpoint_name` names the stage's checkpoint.

    Returns:
        The clusters with x and y set.
    """
    key = input_key(
        records=[*clusters, *base_clusters, *(summaries or ())],
        params={"seed": seed},
        models=[embedder.name],
    )
    if checkpoint_manager is not None:
        cached = checkpoint_manager.load(checkpoint_name, key, Cluster)
        if cached is not None:
            return cached
    base = [c for c in clusters if c.level == 0]
    cents = _centroids(
        base, embedder=embedder, summaries=summaries, cache=cache, base_clusters=base_clusters
    )
    placed = project_clusters(clusters, cents, projector=projector or UmapProjector(seed=seed))
    if checkpoint_manager is not None:
        checkpoint_manager.save(checkpoint_name, key, placed)
    return placed


def visualise_clusters(clusters: Sequence[Cluster], *, min_size_shown: int = 1) -> str:
    """The cluster tree as text (Kura's visualise_clusters), returned for the caller to print."""
    return render_tree(clusters, min_size_shown)
