"""Kura's dimensionality module by name: HDBUMAP and reduce_dimensionality_from_clusters.

A thin layer over api.reduce_dimensionality_from_clusters (UMAP of the base clusters;
parents sit at their children's weighted mean).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kura_stream import api
from kura_stream.api import BaseCluster
from kura_stream.checkpoints import CheckpointStore
from kura_stream.kura_models import shared_embedder
from kura_stream.meta_cluster import with_chat_ids
from kura_stream.protocols import Embedder
from kura_stream.settings import Settings
from kura_stream.stages.project import UmapProjector
from kura_stream.types import Cluster, ProjectedCluster, Summary

logger = logging.getLogger(__name__)

__all__ = ["HDBUMAP", "ProjectedCluster", "reduce_dimensionality_from_clusters"]


class HDBUMAP:
    """Kura's HDBUMAP: UMAP of the clusters' vectors to 2-D, with Kura's defaults."""

    def __init__(
        self,
        embedding_model: Embedder | None = None,
        n_components: int = 2,
        min_dist: float = 0.1,
        metric: str = "cosine",
        n_neighbors: int | None = None,
        *,
        seed: int = 0,
        settings: Settings | None = None,
    ) -> None:
        """Create the model.

        Args:
            embedding_model: A kura-stream Embedder (default: the shared local one; Kura's
                default builds an OpenAI client when the module is imported).
            n_components: 2 only: the map is 2-D (Cluster.x, Cluster.y).
            min_dist: UMAP's min_dist.
            metric: UMAP's metric.
            n_neighbors: UMAP's n_neighbors (None: 15, lowered on small inputs).
            seed: UMAP's random state (Kura's UMAP is unseeded); same input, same map.
            settings: kura-stream settings for the default embedder.

        Raises:
            NotImplementedError: n_components other than 2.
        """
        if n_components != 2:
            raise NotImplementedError("the map is 2-D: n_components must be 2")
        self.n_components = n_components
        self.min_dist = min_dist
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.seed = seed
        self.settings = settings
        self._embedder = embedding_model

    @property
    def checkpoint_filename(self) -> str:
        """Name of this stage's checkpoint (Kura's)."""
        return "dimensionality"

    @property
    def embedder(self) -> Embedder:
        """The embedder given, or the process's shared one."""
        if self._embedder is None:
            self._embedder = shared_embedder(self.settings)
        return self._embedder

    def projector(self) -> UmapProjector:
        """A fresh projector with this model's settings."""
        return UmapProjector(
            n_neighbors=self.n_neighbors or 15,
            min_dist=self.min_dist,
            metric=self.metric,
            seed=self.seed,
        )


async def reduce_dimensionality_from_clusters(
    clusters: Sequence[Cluster],
    *,
    model: HDBUMAP,
    checkpoint_manager: CheckpointStore | None = None,
    summaries: Sequence[Summary] | None = None,
) -> list[ProjectedCluster]:
    """Kura's projection: every cluster with x_coord / y_coord (and x / y), level, chat_ids.

    Args:
        clusters: Base and meta clusters (as reduce_clusters_from_base_clusters returns).
        model: The HDBUMAP.
        checkpoint_manager: Any manager of kura_stream.checkpoints.
        summaries: Beyond Kura: the members' summaries, to place base clusters by their
            members' mean vector instead of their name and description.

    Returns:
        The clusters on the map, in input order.
    """
    base = [c for c in clusters if isinstance(c, BaseCluster) and c.level == 0]
    # Plain Clusters in, so the checkpoint holds one record type whatever subclass came in.
    fields = set(Cluster.model_fields)
    plain = [Cluster.model_validate(c.model_dump(include=fields)) for c in clusters]
    placed = await api.reduce_dimensionality_from_clusters(
        plain,
        embedder=model.embedder,
        summaries=summaries,
        base_clusters=base,
        projector=model.projector(),
        checkpoint_manager=checkpoint_manager,
        seed=model.seed,
        checkpoint_name=model.checkpoint_filename,
    )
    known = [c for c in clusters if getattr(c, "chat_ids", ())]
    return [ProjectedCluster(**c.model_dump()) for c in with_chat_ids(placed, known)]
