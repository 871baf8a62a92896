"""Kura's meta_cluster module by name: MetaClusterModel and reduce_clusters_from_base_clusters.

A thin layer over api.reduce_clusters_from_base_clusters (Clio's hierarchy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kura_stream import api
from kura_stream.api import BaseCluster
from kura_stream.checkpoints import CheckpointStore
from kura_stream.kura_models import (
    DEFAULT_MODEL,
    build_parent_namer,
    resolve_llm,
    shared_embedder,
)
from kura_stream.protocols import Embedder, ParentNamer
from kura_stream.settings import Settings
from kura_stream.types import Cluster, HierarchyGrouping, Summary

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger(__name__)

__all__ = ["MetaClusterModel", "reduce_clusters_from_base_clusters", "with_chat_ids"]


class MetaClusterModel:
    """Kura's MetaClusterModel: groups clusters into at most `max_clusters` top clusters.

    With an endpoint set, the LLM proposes, chooses and names parents (Clio); without one,
    parents are k-means groups of the clusters' centroids, named offline.
    """

    def __init__(
        self,
        max_concurrent_requests: int = 50,
        model: str = DEFAULT_MODEL,
        embedding_model: Embedder | None = None,
        clustering_model: object | None = None,
        max_clusters: int = 10,
        console: Console | None = None,
        *,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the model (nothing is built until it is used).

        Args:
            max_concurrent_requests: Kept for Kura's signature (the endpoint's slots decide).
            model: Kura's model string, any name the endpoint serves, or "offline".
            embedding_model: A kura-stream Embedder (default: the shared local one).
            clustering_model: Not supported: None (see NotImplementedError).
            max_clusters: Top-level clusters at most.
            console: Kept for Kura's signature.
            settings: kura-stream settings (default: from KURA_* environment variables).
            **kwargs: Ignored, as Kura ignores them ("for future use").

        Raises:
            NotImplementedError: clustering_model is given.
        """
        if clustering_model is not None:
            raise NotImplementedError(
                "MetaClusterModel(clustering_model=...) is not supported: parents are chosen "
                "by the LLM (Clio) or grouped by k-means on centroids offline"
            )
        if kwargs:
            logger.warning("MetaClusterModel ignores %s", sorted(kwargs))
        self.max_concurrent_requests = max_concurrent_requests
        self.model = model
        self.max_clusters = max_clusters
        self.console = console
        self.settings = settings
        self._embedder = embedding_model
        self._namer: tuple[ParentNamer, HierarchyGrouping] | None = None

    @property
    def checkpoint_filename(self) -> str:
        """Name of this stage's checkpoint (Kura's)."""
        return "meta_clusters"

    @property
    def embedder(self) -> Embedder:
        """The embedder given, or the process's shared one."""
        if self._embedder is None:
            self._embedder = shared_embedder(self.settings)
        return self._embedder

    def parent_namer(self) -> tuple[ParentNamer, HierarchyGrouping]:
        """The parent namer and the grouping it goes with."""
        if self._namer is None:
            self._namer = build_parent_namer(resolve_llm(self.model, self.settings))
        return self._namer


def with_chat_ids(clusters: Sequence[Cluster], members: Sequence[Cluster]) -> list[BaseCluster]:
    """The clusters with Kura's chat_ids: a base cluster's members, a parent's descendants'.

    Args:
        clusters: Clusters of all levels, linked by parent_id.
        members: Clusters whose chat_ids are known (BaseCluster or ProjectedCluster).
    """
    ids: dict[str, list[str]] = {
        c.id: list(getattr(c, "chat_ids", ())) for c in members if getattr(c, "chat_ids", ())
    }
    parents = {c.id: c.parent_id for c in clusters}
    known = {m.id for m in members}
    for cluster_id, chat_ids in list(ids.items()):
        seen = {cluster_id}
        parent = parents.get(cluster_id)
        while parent is not None and parent not in seen and parent in parents:
            seen.add(parent)
            if parent not in known:
                ids.setdefault(parent, []).extend(chat_ids)
            parent = parents.get(parent)
    fields = set(Cluster.model_fields)
    return [
        BaseCluster(**c.model_dump(include=fields), chat_ids=tuple(ids.get(c.id, ())))
        for c in clusters
    ]


async def reduce_clusters_from_base_clusters(
    clusters: Sequence[Cluster],
    *,
    model: MetaClusterModel,
    checkpoint_manager: CheckpointStore | None = None,
    summaries: Sequence[Summary] | None = None,
) -> list[BaseCluster]:
    """Kura's meta-clustering: base clusters and their parents, up to model.max_clusters roots.

    Args:
        clusters: Base clusters (as generate_base_clusters_from_conversation_summaries
            returns them).
        model: The MetaClusterModel.
        checkpoint_manager: Any manager of kura_stream.checkpoints.
        summaries: Beyond Kura: the members' summaries, so clusters are grouped by their
            members' mean vector instead of the embedding of their name and description.

    Returns:
        Every cluster, base and meta, with parent_id, level, count and chat_ids.
    """
    namer, grouping = model.parent_namer()
    result = await api.reduce_clusters_from_base_clusters(
        clusters,
        embedder=model.embedder,
        parent_namer=namer,
        summaries=summaries,
        checkpoint_manager=checkpoint_manager,
        max_top=model.max_clusters,
        grouping=grouping,
        checkpoint_name=model.checkpoint_filename,
    )
    return with_chat_ids(result, [c for c in clusters if c.level == 0])
