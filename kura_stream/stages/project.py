"""The 2-D map: a seeded UMAP projector and cluster positions (meta clusters from children)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import Projector
from kura_stream.types import Cluster

logger = logging.getLogger(__name__)

MIN_UMAP_POINTS = 4
"""UMAP's spectral layout fails below this many points (scipy eigh with k >= N)."""


class UmapProjector:
    """Implements Projector with umap-learn: cosine metric, seeded, Clio's settings.

    Clio runs UMAP with n_neighbors=15, min_dist=0 and the cosine metric; so do we, with
    n_neighbors lowered to n - 1 on small inputs. Below MIN_UMAP_POINTS points, or if UMAP
    fails on a degenerate input (e.g. identical vectors), the map is the data's first two
    principal axes (a linear map, so `transform` still places new points on it). With a seed
    UMAP runs single-threaded and gives the same positions on every run.

    Numba compiles UMAP's kernels on first use: budget 10-20 s for the first `fit_transform`
    and about 5 s for the first `transform` in a process on two shared cores.
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        seed: int = 0,
    ) -> None:
        """Create an unfitted projector.

        Args:
            n_neighbors: UMAP's neighbourhood size (lowered to n - 1 for small inputs).
            min_dist: How tightly UMAP packs points (Clio: 0).
            metric: Distance between input vectors.
            seed: UMAP's random state.
        """
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.seed = seed
        self._umap: Any = None
        self._linear: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None

    @property
    def fitted(self) -> bool:
        """Whether fit_transform has run."""
        return self._umap is not None or self._linear is not None

    @property
    def uses_umap(self) -> bool:
        """False when the fitted map is the linear fallback."""
        return self._umap is not None

    def fit_transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fit the map on vectors and return their positions.

        Args:
            vectors: Shape (n, d), any n (including 0).

        Returns:
            Positions, float32, shape (n, 2).
        """
        x = np.asarray(vectors, dtype=np.float32)
        self._umap, self._linear = None, None
        n = x.shape[0]
        if n >= MIN_UMAP_POINTS:
            from umap import UMAP

            model = UMAP(
                n_components=2,
                n_neighbors=max(2, min(self.n_neighbors, n - 1)),
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.seed,
                n_jobs=1,
            )
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="n_jobs value")
                    out = np.asarray(model.fit_transform(x), dtype=np.float32)
                self._umap = model
                return out
            except (ValueError, TypeError) as exc:
                logger.warning("UMAP failed on %d points (%s); using a linear map", n, exc)
        logger.info("linear 2-D map for %d points", n)
        return self._fit_linear(x)

    def transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Place new vectors on the fitted map without refitting it.

        Args:
            vectors: Shape (m, d) with the d of the fitted vectors.

        Returns:
            Positions, float32, shape (m, 2).

        Raises:
            RuntimeError: fit_transform has not run.
        """
        x = np.asarray(vectors, dtype=np.float32)
        if self._umap is not None:
            if x.shape[0] == 0:
                return np.zeros((0, 2), dtype=np.float32)
            return np.asarray(self._umap.transform(x), dtype=np.float32)
        if self._linear is not None:
            mean, axes = self._linear
            return ((x - mean) @ axes.T).astype(np.float32)
        raise RuntimeError("transform called before fit_transform")

    def _fit_linear(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        dim = x.shape[1] if x.ndim == 2 else 0
        mean = x.mean(axis=0) if x.shape[0] else np.zeros(dim, dtype=np.float32)
        axes = np.zeros((2, dim), dtype=np.float32)
        if x.shape[0] > 1:
            _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
            for i in range(min(2, vt.shape[0])):
                axis = vt[i]
                # SVD signs are arbitrary: fix them so the same input maps the same way.
                sign = 1.0 if axis[np.argmax(np.abs(axis))] >= 0 else -1.0
                axes[i] = sign * axis
        self._linear = (mean.astype(np.float32), axes)
        return self.transform(x)


def project_clusters(
    clusters: Sequence[Cluster],
    centroids: Mapping[str, npt.ArrayLike],
    *,
    projector: Projector,
    refit: bool = True,
) -> list[Cluster]:
    """Set every cluster's x, y: base clusters from their centroids, parents from children.

    Base clusters (level 0) are placed by the projector: fitted on their centroids when
    `refit`, else placed on the projector's existing map with `transform`. A meta cluster
    sits at the count-weighted mean of its children's positions (plain mean if all counts
    are 0); one with no child in `clusters` is placed from its own centroid with `transform`.

    Args:
        clusters: Base and meta clusters (parent_id and level set, e.g. by build_hierarchy).
        centroids: Centroid by cluster id; needed for every base cluster.
        projector: The 2-D map (e.g. UmapProjector).
        refit: Fit the map on the base centroids (True) or reuse the fitted one (False).

    Returns:
        The clusters with x and y set, in input order.
    """
    base = [c for c in clusters if c.level == 0]
    pos: dict[str, npt.NDArray[np.float32]] = {}
    if base:
        x = np.stack([np.asarray(centroids[c.id], dtype=np.float32) for c in base])
        placed = projector.fit_transform(x) if refit else projector.transform(x)
        pos.update({c.id: placed[i] for i, c in enumerate(base)})
    children: dict[str, list[Cluster]] = {}
    for c in clusters:
        if c.parent_id is not None:
            children.setdefault(c.parent_id, []).append(c)
    for parent in sorted((c for c in clusters if c.level > 0), key=lambda c: c.level):
        kids = [k for k in children.get(parent.id, []) if k.id in pos]
        if kids:
            weights = np.array([k.count for k in kids], dtype=np.float64)
            if weights.sum() <= 0:
                weights = np.ones_like(weights)
            points = np.stack([pos[k.id] for k in kids]).astype(np.float64)
            pos[parent.id] = (weights @ points / weights.sum()).astype(np.float32)
        elif parent.id in centroids:
            vector = np.asarray(centroids[parent.id], dtype=np.float32)[None, :]
            pos[parent.id] = projector.transform(vector)[0]
        else:
            pos[parent.id] = np.zeros(2, dtype=np.float32)
    logger.info("projected %d clusters (%d base)", len(clusters), len(base))
    return [
        c.model_copy(update={"x": float(pos[c.id][0]), "y": float(pos[c.id][1])}) for c in clusters
    ]
