"""Kura's cluster module by name: ClusterDescriptionModel, clustering methods, base clusters.

A thin layer over api.generate_base_clusters_from_conversation_summaries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kura_stream import api
from kura_stream.api import BaseCluster
from kura_stream.checkpoints import CheckpointStore
from kura_stream.kura_models import (
    DEFAULT_MODEL,
    build_cluster_namer,
    resolve_llm,
    shared_embedder,
)
from kura_stream.protocols import ClusterNamer, Embedder
from kura_stream.settings import Settings
from kura_stream.stages.cluster import hdbscan_clusters, kmeans_clusters
from kura_stream.types import Summary

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger(__name__)

__all__ = [
    "BaseCluster",
    "ClusterDescriptionModel",
    "HDBSCANClusteringMethod",
    "KmeansClusteringMethod",
    "KmeansClusteringModel",
    "MiniBatchKmeansClusteringMethod",
    "generate_base_clusters_from_conversation_summaries",
]

Item = Mapping[str, Any]
"""Kura's clustering input: {"embedding": list[float], "item": anything}."""


def _grouped(items: Sequence[Item], labels: np.ndarray[Any, Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for item, label in zip(items, labels, strict=True):
        out.setdefault(int(label), []).append(item["item"])
    return out


class KmeansClusteringModel:
    """Kura's k-means: k = ceil(n / clusters_per_group), here on unit vectors and seeded."""

    def __init__(self, clusters_per_group: int = 10, *, seed: int = 0) -> None:
        """Create the method (Kura's clusters_per_group; seed makes it repeatable)."""
        self.clusters_per_group = clusters_per_group
        self.seed = seed

    def options(self) -> dict[str, Any]:
        """Keyword arguments of api.generate_base_clusters_from_conversation_summaries."""
        return {"method": "kmeans", "k": None, "clusters_per_group": self.clusters_per_group}

    def cluster(self, items: Sequence[Item]) -> dict[int, list[Any]]:
        """Kura's items ({"embedding", "item"}) grouped by cluster label."""
        if not items:
            return {}
        vectors = np.asarray([i["embedding"] for i in items], dtype=np.float32)
        k = math.ceil(len(items) / self.clusters_per_group)
        return _grouped(items, kmeans_clusters(vectors, k=k, seed=self.seed))


KmeansClusteringMethod = KmeansClusteringModel
"""Kura's kura.k_means name for the same method."""


class MiniBatchKmeansClusteringMethod(KmeansClusteringModel):
    """Kura's MiniBatch k-means; full k-means here (it is fast enough at batch sizes)."""

    def __init__(
        self,
        clusters_per_group: int = 10,
        batch_size: int = 1000,
        max_iter: int = 100,
        random_state: int = 42,
    ) -> None:
        """Create the method; batch_size and max_iter are not needed by full k-means."""
        super().__init__(clusters_per_group, seed=random_state)
        self.batch_size = batch_size
        self.max_iter = max_iter


class HDBSCANClusteringMethod:
    """Kura's HDBSCAN (scikit-learn's), on unit vectors; noise joins its nearest cluster.

    Kura makes the noise one more cluster and names it as if it were a topic; here each
    noise point joins the cluster nearest to it.
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_samples: int | None = None,
        cluster_selection_epsilon: float = 0.0,
        alpha: float = 1.0,
        cluster_selection_method: Literal["eom", "leaf"] = "eom",
        metric: str = "euclidean",
        **kwargs: Any,
    ) -> None:
        """Create the method with Kura's arguments.

        Raises:
            NotImplementedError: alpha, metric or extra HDBSCAN arguments other than the
                defaults (vectors are unit-normalised, so Euclidean ranks as cosine).
        """
        if alpha != 1.0 or metric != "euclidean" or kwargs:
            raise NotImplementedError("HDBSCAN alpha, metric and extra arguments are fixed")
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.cluster_selection_method: Literal["eom", "leaf"] = cluster_selection_method

    def hdbscan_options(self) -> dict[str, Any]:
        """Keyword arguments of stages.cluster.hdbscan_clusters."""
        return {
            "min_cluster_size": self.min_cluster_size,
            "min_samples": self.min_samples,
            "cluster_selection_epsilon": self.cluster_selection_epsilon,
            "cluster_selection_method": self.cluster_selection_method,
        }

    def options(self) -> dict[str, Any]:
        """Keyword arguments of api.generate_base_clusters_from_conversation_summaries."""
        return {"method": "hdbscan", "hdbscan_options": self.hdbscan_options()}

    def cluster(self, items: Sequence[Item]) -> dict[int, list[Any]]:
        """Kura's items ({"embedding", "item"}) grouped by cluster label."""
        if not items:
            return {}
        vectors = np.asarray([i["embedding"] for i in items], dtype=np.float32)
        return _grouped(items, hdbscan_clusters(vectors, **self.hdbscan_options()))


ClusteringMethod = KmeansClusteringModel | HDBSCANClusteringMethod


class ClusterDescriptionModel:
    """Kura's ClusterDescriptionModel: names clusters with an LLM, or offline.

    With an endpoint set, Clio's contrastive prompt, bounded in members and tokens;
    without one, the offline namer.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_concurrent_requests: int = 50,
        temperature: float = 0.2,
        checkpoint_filename: str = "clusters",
        console: Console | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        """Create the model (nothing is built until the first cluster is named).

        Args:
            model: Kura's model string, any name the endpoint serves, or "offline".
            max_concurrent_requests: Kept for Kura's signature; naming runs one cluster at
                a time per endpoint slot.
            temperature: Sampling temperature of the LLM namer.
            checkpoint_filename: Name of this stage's checkpoint.
            console: Kept for Kura's signature (no live preview).
            settings: kura-stream settings (default: from KURA_* environment variables).
        """
        self.model = model
        self.max_concurrent_requests = max_concurrent_requests
        self.temperature = temperature
        self._checkpoint_filename = checkpoint_filename
        self.console = console
        self.settings = settings
        self._namers: dict[int, ClusterNamer] = {}

    @property
    def checkpoint_filename(self) -> str:
        """Name of this stage's checkpoint."""
        return self._checkpoint_filename

    def namer(self, max_contrastive_examples: int = 10) -> ClusterNamer:
        """The cluster namer this model stands for."""
        if max_contrastive_examples not in self._namers:
            llm = resolve_llm(self.model, self.settings)
            self._namers[max_contrastive_examples] = build_cluster_namer(
                llm, temperature=self.temperature, max_contrast=max_contrastive_examples
            )
        return self._namers[max_contrastive_examples]


async def generate_base_clusters_from_conversation_summaries(
    summaries: Sequence[Summary],
    embedding_model: Embedder | None = None,
    clustering_method: ClusteringMethod | None = None,
    clustering_model: ClusterDescriptionModel | None = None,
    checkpoint_manager: CheckpointStore | None = None,
    max_contrastive_examples: int = 10,
    prompt: str | None = None,
    *,
    model: ClusterDescriptionModel | None = None,
) -> list[BaseCluster]:
    """Kura's base clustering: embed the summaries, cluster them, name each cluster.

    Args:
        summaries: The summaries (Kura: ConversationSummary).
        embedding_model: A kura-stream Embedder (default: the shared local one).
        clustering_method: KmeansClusteringModel, MiniBatchKmeansClusteringMethod or
            HDBSCANClusteringMethod. Default: k-means with k chosen from the data (cosine
            silhouette), not Kura's n / 10, which splits topics into many small clusters.
        clustering_model: The ClusterDescriptionModel (default: ClusterDescriptionModel()).
        checkpoint_manager: Any manager of kura_stream.checkpoints.
        max_contrastive_examples: Nearest non-members shown to the LLM namer.
        prompt: Not supported (the naming prompt is bounded); None.
        model: The same as clustering_model (Kura's Quick Start passes it as model=).

    Returns:
        Base clusters with their members' chat_ids and counts.
    """
    if prompt is not None:
        raise NotImplementedError("a custom naming prompt is not supported (it is bounded)")
    if not summaries:
        raise ValueError("Empty summaries list provided")
    if model is not None and clustering_model is not None and model is not clustering_model:
        raise TypeError("pass the ClusterDescriptionModel once: model= or clustering_model=")
    namer_model = model or clustering_model or ClusterDescriptionModel()
    if clustering_method is None:
        options: dict[str, Any] = {"method": "kmeans", "k": "auto"}
    else:
        options = clustering_method.options()
    return await api.generate_base_clusters_from_conversation_summaries(
        summaries,
        embedder=embedding_model or shared_embedder(namer_model.settings),
        namer=namer_model.namer(max_contrastive_examples),
        checkpoint_manager=checkpoint_manager,
        checkpoint_name=namer_model.checkpoint_filename,
        **options,
    )
