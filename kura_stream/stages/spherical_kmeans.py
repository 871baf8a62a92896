"""Spherical k-means for a full recompute, bounded in time and memory at any store size.

The cosine rule is the live assigner's, so a recompute started from converged centroids on
unchanged data changes nothing. Similarities are computed a block of rows at a time (a
100,000 x 4,000 matrix alone would take 1.6 GB), and a large store is fitted on a seeded
sample and then labelled whole in one more pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from kura_stream.stages.cluster import normalise

BLOCK_ROWS = 8192
"""Rows per similarity block: 8,192 x 2,000 centroids is 64 MB of float32."""


def nearest(
    unit: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], *, block: int = BLOCK_ROWS
) -> npt.NDArray[np.intp]:
    """Index of the most cosine-similar centroid for each row (both sides unit length)."""
    labels = np.empty(len(unit), dtype=np.intp)
    for start in range(0, len(unit), block):
        labels[start : start + block] = np.argmax(unit[start : start + block] @ centroids.T, axis=1)
    return labels


def seed_centroids(
    unit: npt.NDArray[np.float32],
    old: Sequence[npt.NDArray[np.float32]],
    k: int,
    seed: int,
) -> npt.NDArray[np.float32]:
    """Old centroids first (stable identities), then k-means++-style far points to fill k.

    Args:
        unit: Unit-length rows to seed from.
        old: Centroids kept first, in order; only the first k are used.
        k: Centroids wanted.
        seed: Seed of the far-point draws.

    Returns:
        (k, d) unit centroids (fewer only if k exceeds len(old) + len(unit)).
    """
    rng = np.random.default_rng(seed)
    chosen = [np.asarray(c, np.float32) for c in old[:k]]
    if not chosen:
        chosen = [unit[int(rng.integers(len(unit)))]]
    # Similarity of each row to its closest chosen centroid, kept up to date pick by pick.
    best = np.full(len(unit), -np.inf, dtype=np.float32)
    stacked = np.stack(chosen)
    for start in range(0, len(unit), BLOCK_ROWS):
        rows = unit[start : start + BLOCK_ROWS]
        best[start : start + BLOCK_ROWS] = (rows @ stacked.T).max(axis=1)
    while len(chosen) < k:
        distance = np.clip(1.0 - best, 0.0, None) ** 2
        total = float(distance.sum())
        pick = (
            int(rng.choice(len(unit), p=distance / total))
            if total > 0
            else int(rng.integers(len(unit)))
        )
        chosen.append(unit[pick])
        np.maximum(best, unit @ unit[pick], out=best)
    return normalise(np.stack(chosen).astype(np.float32))


def spherical_kmeans(
    unit: npt.NDArray[np.float32], init: npt.NDArray[np.float32], *, max_iter: int = 50
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """k-means on the sphere: assign by cosine to unit centroids, recentre on normalised means.

    Empty clusters keep their previous centroid.

    Returns:
        Labels of the rows of unit, and the final (k, d) centroids.
    """
    centroids = normalise(init)
    k, n = len(centroids), len(unit)
    wide = unit.astype(np.float64)
    rows = np.arange(n)
    labels = nearest(unit, centroids)
    for _ in range(max_iter):
        # Per-cluster sums as one sparse (k, n) membership product: np.add.at was the
        # slowest line of a 12,000-conversation recompute.
        members = csr_matrix((np.ones(n), (labels, rows)), shape=(k, n))
        sums = np.asarray(members @ wide)
        filled = np.linalg.norm(sums, axis=1) > 0
        centroids[filled] = normalise(sums[filled].astype(np.float32))
        new_labels = nearest(unit, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centroids


def recluster(
    vectors: npt.NDArray[np.float32],
    old: Sequence[npt.NDArray[np.float32]],
    k: int,
    *,
    seed: int,
    fit_sample: int,
) -> npt.NDArray[np.intp]:
    """Labels for every row: seeded from old centroids, fitted on at most fit_sample rows.

    Args:
        vectors: (n, d) embeddings, any length.
        old: Existing centroids, most important first (they keep their rows 0..len(old)-1).
        k: Clusters wanted (at most the rows fitted).
        seed: Seed of the sample and of k-means++.
        fit_sample: Above this many rows, k-means runs on a seeded uniform sample of this
            size, and all rows are then labelled by their nearest fitted centroid.

    Returns:
        (n,) labels in 0..k-1, indexing the seeded centroids (old ones first).
    """
    if len(vectors) <= fit_sample:
        unit = normalise(vectors)
        labels, _ = spherical_kmeans(unit, seed_centroids(unit, old, min(k, len(unit)), seed))
        return labels
    # Only the sample is copied: a row's length does not change which centroid is nearest.
    rng = np.random.default_rng(seed)
    fit = normalise(vectors[np.sort(rng.choice(len(vectors), size=fit_sample, replace=False))])
    _, centroids = spherical_kmeans(fit, seed_centroids(fit, old, min(k, len(fit)), seed))
    return nearest(vectors, centroids)
