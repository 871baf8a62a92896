"""Base clustering of summary embeddings in batch: Kura's k-means, HDBSCAN, centroids."""

from __future__ import annotations

import logging
import math
import warnings
from typing import Literal

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

Labels = npt.NDArray[np.int64]
"""One cluster label per vector: 0..k-1, or OUTLIER for a point left in the outlier pool."""

OUTLIER = -1
"""The label of a point that belongs to no cluster (HDBSCAN noise kept as such)."""

KURA_CLUSTERS_PER_GROUP = 10
"""Kura's default target size of a base cluster (`KmeansClusteringMethod` default)."""


def normalise(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero).

    Args:
        vectors: A 2-D array of shape (n, d).

    Returns:
        A float32 array of the same shape whose non-zero rows have unit L2 norm.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True).astype(np.float32)
    norms[norms == 0] = 1.0
    out: npt.NDArray[np.float32] = (array / norms).astype(np.float32, copy=False)
    return out


def kura_k(n: int, clusters_per_group: int = KURA_CLUSTERS_PER_GROUP) -> int:
    """Kura's number of base clusters: `math.ceil(n / clusters_per_group)`.

    Args:
        n: Number of items to cluster.
        clusters_per_group: Target number of items per cluster (Kura's default is 10).

    Returns:
        The number of clusters, at least 1 when n > 0 and 0 when n == 0.
    """
    if clusters_per_group < 1:
        raise ValueError("clusters_per_group must be >= 1")
    return math.ceil(n / clusters_per_group)


def relabel_by_first_seen(labels: npt.ArrayLike) -> Labels:
    """Renumber labels 0, 1, 2, ... in order of first appearance, keeping OUTLIER as is.

    This makes labels contiguous (k-means may leave a label empty on duplicate points) and
    independent of the clusterer's internal numbering.

    Args:
        labels: Integer labels, OUTLIER for outliers.

    Returns:
        The renumbered labels, int64.
    """
    array = np.asarray(labels, dtype=np.int64)
    out = np.full(array.shape, OUTLIER, dtype=np.int64)
    mapping: dict[int, int] = {}
    for i, label in enumerate(array.tolist()):
        if label == OUTLIER:
            continue
        out[i] = mapping.setdefault(label, len(mapping))
    return out


def kmeans_clusters(
    vectors: npt.ArrayLike,
    *,
    k: int | None = None,
    clusters_per_group: int = KURA_CLUSTERS_PER_GROUP,
    seed: int = 0,
    n_init: int = 1,
    max_iter: int = 300,
) -> Labels:
    """Base clusters by k-means on unit-normalised vectors (spherical k-means, approximately).

    Kura runs `KMeans(n_clusters=ceil(n / clusters_per_group))` unseeded on raw embeddings; we
    keep its k, normalise the rows first (so Euclidean k-means ranks by cosine, as the store
    does), and seed it so the same input always gives the same clusters.

    Args:
        vectors: Embeddings, shape (n, d).
        k: Number of clusters; defaults to Kura's `ceil(n / clusters_per_group)`. Clamped to
            [1, n].
        clusters_per_group: Target cluster size used when k is None.
        seed: Random state of k-means++ initialisation.
        n_init: Number of k-means restarts (the best inertia wins).
        max_iter: Maximum Lloyd iterations per restart.

    Returns:
        Labels 0..m-1 (m <= k; contiguous, numbered by first appearance), shape (n,).
    """
    from sklearn.cluster import KMeans

    x = normalise(vectors)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_clusters = kura_k(n, clusters_per_group) if k is None else k
    n_clusters = max(1, min(n_clusters, n))
    if n_clusters == 1:
        return np.zeros(n, dtype=np.int64)
    model = KMeans(n_clusters=n_clusters, random_state=seed, n_init=n_init, max_iter=max_iter)
    with warnings.catch_warnings():
        # Fewer distinct points than k (duplicates): fewer clusters, numbered contiguously.
        warnings.filterwarnings("ignore", message="Number of distinct clusters")
        labels = relabel_by_first_seen(model.fit_predict(x))
    sizes = np.bincount(labels)
    logger.info(
        "k-means: %d vectors -> %d clusters (k=%d), sizes min %d / median %d / max %d",
        n,
        sizes.size,
        n_clusters,
        int(sizes.min()),
        int(np.median(sizes)),
        int(sizes.max()),
    )
    return labels


def _hdbscan_labels(
    x: npt.NDArray[np.float32],
    min_cluster_size: int,
    min_samples: int | None,
    cluster_selection_epsilon: float,
    cluster_selection_method: Literal["eom", "leaf"],
) -> npt.NDArray[np.int64]:
    """HDBSCAN's own labels (OUTLIER for noise); all noise below min_cluster_size points."""
    from sklearn.cluster import HDBSCAN

    n = x.shape[0]
    if n < max(2, min_cluster_size):
        return np.full(n, OUTLIER, dtype=np.int64)
    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        cluster_selection_epsilon=cluster_selection_epsilon,
        cluster_selection_method=cluster_selection_method,
        metric="euclidean",
        copy=True,
    )
    return np.asarray(model.fit_predict(x), dtype=np.int64)


def hdbscan_clusters(
    vectors: npt.ArrayLike,
    *,
    min_cluster_size: int = 10,
    min_samples: int | None = None,
    cluster_selection_epsilon: float = 0.0,
    cluster_selection_method: Literal["eom", "leaf"] = "eom",
    noise: Literal["nearest", "keep"] = "nearest",
) -> Labels:
    """Base clusters by HDBSCAN on unit-normalised vectors (Euclidean there ranks as cosine).

    HDBSCAN leaves points in sparse regions as noise. Kura renames its noise group to an
    ordinary cluster id, so a bag of unrelated conversations gets named as if it were one
    topic; we do not. With `noise="nearest"` (the default) each noise point joins the cluster
    whose centroid is most similar, so every conversation has a base cluster and counts up the
    hierarchy sum to the corpus; the count of moved points is logged. With `noise="keep"`
    noise points keep the label OUTLIER (-1): the stream's outlier pool
    (`Assignment.cluster_id is None`); `attach_outliers` applies the first policy later.

    HDBSCAN is deterministic (no seed). If it finds no cluster at all, "nearest" puts every
    point in one cluster 0 and "keep" leaves them all OUTLIER.

    Args:
        vectors: Embeddings, shape (n, d).
        min_cluster_size: Smallest group HDBSCAN reports as a cluster (Kura's default 10).
        min_samples: Neighbours for a core point; None means min_cluster_size.
        cluster_selection_epsilon: Merge clusters closer than this distance.
        cluster_selection_method: "eom" (excess of mass) or "leaf" (finer clusters).
        noise: "nearest" attaches noise to the nearest cluster; "keep" labels it OUTLIER.

    Returns:
        Labels 0..m-1 (numbered by first appearance), OUTLIER for kept noise, shape (n,).
    """
    x = normalise(vectors)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    raw = _hdbscan_labels(
        x, min_cluster_size, min_samples, cluster_selection_epsilon, cluster_selection_method
    )
    labels = relabel_by_first_seen(raw)
    n_noise = int(np.sum(labels == OUTLIER))
    n_clusters = int(labels.max()) + 1 if n_noise < n else 0
    logger.info(
        "HDBSCAN: %d vectors -> %d clusters, %d noise points (%.0f%%)",
        n,
        n_clusters,
        n_noise,
        100.0 * n_noise / n,
    )
    if noise == "keep":
        return labels
    return attach_outliers(x, labels)


def attach_outliers(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> Labels:
    """Give every OUTLIER point the cluster whose centroid is most similar (cosine).

    Centroids are those of the clustered points only, so outliers do not drag each other in.
    When there is no cluster at all, every point goes to one cluster 0.

    Args:
        vectors: Embeddings, shape (n, d).
        labels: Labels with OUTLIER for outliers, shape (n,).

    Returns:
        Labels without OUTLIER, shape (n,).
    """
    x = normalise(vectors)
    out = np.asarray(labels, dtype=np.int64).copy()
    noise = out == OUTLIER
    if not noise.any():
        return out
    if noise.all():
        logger.info("no cluster to attach %d outliers to: one cluster for all", int(noise.sum()))
        return np.zeros(out.shape, dtype=np.int64)
    cents = centroids(x, out)
    out[noise] = np.argmax(x[noise] @ cents.T, axis=1)
    logger.info("attached %d outliers to their nearest cluster", int(noise.sum()))
    return out


def centroids(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Unit-normalised mean vector of each cluster.

    Args:
        vectors: Embeddings, shape (n, d); normalised before averaging, so each member weighs
            the same.
        labels: Cluster labels, shape (n,); OUTLIER points are ignored.

    Returns:
        A float32 array of shape (max_label + 1, d): row j is cluster j's centroid (a zero row
        if label j has no member).
    """
    x = normalise(vectors)
    lab = np.asarray(labels, dtype=np.int64)
    if lab.shape != (x.shape[0],):
        raise ValueError(f"labels shape {lab.shape} does not match {x.shape[0]} vectors")
    keep = lab != OUTLIER
    k = int(lab[keep].max()) + 1 if keep.any() else 0
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(sums, lab[keep], x[keep])
    return normalise(sums)
