"""How many clusters the data holds: spherical k-means over a grid of k, scored by silhouette.

Kura fixes k at one cluster per ten conversations, which splits five news topics into two
hundred clusters; a constant k is right for no traffic. The silhouette (cosine) of each
candidate clustering, computed on a seeded sample, measures how much closer members sit to
their own cluster than to the next one, whatever the embedder's similarity scale.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kura_stream.stages.cluster import normalise
from kura_stream.stages.spherical_kmeans import seed_centroids, spherical_kmeans

logger = logging.getLogger(__name__)

SAMPLE = 2000
"""Rows the choice is made on: the silhouette is quadratic in them (2,000: about 0.1 s)."""

GRID = 14
"""Candidate values of k, spaced geometrically between the bounds."""

N_INIT = 3
"""k-means restarts per candidate: one bad start merges two groups and splits another, and
the true k then scores below its neighbours."""


@dataclass(frozen=True)
class KChoice:
    """The chosen k and the silhouette of every candidate.

    Attributes:
        k: The best-scoring candidate.
        scores: Candidate k -> silhouette on the sample.
    """

    k: int
    scores: dict[int, float]


def candidate_ks(k_min: int, k_max: int, grid: int = GRID) -> list[int]:
    """Distinct integers spaced geometrically from k_min to k_max, both included."""
    k_min = max(2, k_min)
    if k_max <= k_min:
        return [max(1, k_max)]
    steps = np.geomspace(k_min, k_max, num=grid)
    return sorted({round(float(s)) for s in steps} | {k_min, k_max})


def silhouette(unit: npt.NDArray[np.float32], labels: npt.NDArray[np.intp]) -> float:
    """Mean cosine silhouette of unit rows; 0 for a single cluster.

    Args:
        unit: Unit-length rows.
        labels: Their cluster labels.
    """
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(unit):
        return 0.0
    return float(silhouette_score(unit, labels, metric="cosine"))


def fit(unit: npt.NDArray[np.float32], k: int, *, seed: int, n_init: int) -> npt.NDArray[np.intp]:
    """Labels of the tightest of n_init spherical k-means runs (highest total similarity)."""
    best: tuple[float, npt.NDArray[np.intp]] | None = None
    for run in range(n_init):
        labels, centroids = spherical_kmeans(unit, seed_centroids(unit, [], k, seed + run))
        tightness = float(np.einsum("ij,ij->", unit, centroids[labels]))
        if best is None or tightness > best[0]:
            best = (tightness, labels)
    assert best is not None
    return best[1]


def choose_k(
    vectors: npt.ArrayLike,
    *,
    k_min: int = 2,
    k_max: int,
    sample: int = SAMPLE,
    seed: int = 0,
    grid: int = GRID,
    n_init: int = N_INIT,
) -> KChoice:
    """The number of clusters with the best silhouette, between k_min and k_max.

    Args:
        vectors: (n, d) embeddings.
        k_min: Fewest clusters considered (at least 2).
        k_max: Most clusters considered (capped below the sample's size).
        sample: Rows the choice is made on (a seeded uniform sample of larger inputs).
        seed: Seed of the sample and of k-means++.
        grid: How many candidates between the bounds.
        n_init: k-means restarts per candidate (the tightest fit is scored).

    Returns:
        The choice; k is 1 when there are fewer than 3 rows.
    """
    unit = normalise(vectors)
    if len(unit) < 3:
        return KChoice(k=1, scores={})
    rng = np.random.default_rng(seed)
    if len(unit) > sample:
        unit = unit[np.sort(rng.choice(len(unit), size=sample, replace=False))]
    upper = max(2, min(k_max, len(unit) - 1))
    scores: dict[int, float] = {}

    def score(ks: list[int]) -> int:
        for k in ks:
            if k not in scores:
                scores[k] = silhouette(unit, fit(unit, k, seed=seed, n_init=n_init))
        return max(scores, key=lambda k: (round(scores[k], 4), -k))

    coarse = candidate_ks(min(k_min, upper), upper, grid)
    best = score(coarse)
    # Then every k between the best's neighbours on the coarse grid, a few at most.
    at = coarse.index(best)
    low, high = coarse[max(0, at - 1)], coarse[min(len(coarse) - 1, at + 1)]
    best = score(candidate_ks(low, high, grid=8) if high > low else [best])
    logger.info(
        "k chosen: %d of %s (silhouette %.3f)",
        best,
        ", ".join(f"{k}:{s:.3f}" for k, s in scores.items()),
        scores[best],
    )
    return KChoice(k=best, scores=scores)


def k_bound(n: int, per_cluster: int, most: int) -> int:
    """The largest k worth considering: one cluster per per_cluster rows, at most `most`."""
    return max(2, min(most, math.ceil(n / per_cluster)))


PER_CLUSTER = 20
"""At most one base cluster per this many conversations. Chosen on MultiWOZ and
chatterbot-corpus: on diverse traffic the silhouette keeps rising with k, and a bound of one
per 10 picked clusters finer than their labels (AMI 0.46-0.49 against 0.50)."""

MIN_CLUSTERS = 10
"""At least this many base clusters where the data allows (the top level of the hierarchy
holds up to 10): on 2,000 ShareGPT conversations the static embedder's best silhouette was
k = 2, one vague split that says nothing about what people ask."""


def base_k(
    vectors: npt.ArrayLike,
    *,
    per_cluster: int = PER_CLUSTER,
    min_clusters: int = MIN_CLUSTERS,
    max_clusters: int = 2000,
    seed: int = 0,
) -> int:
    """The number of base clusters for these vectors: choose_k within the bounds above."""
    n = len(np.asarray(vectors))
    upper = k_bound(n, per_cluster, max_clusters)
    return choose_k(vectors, k_min=min(min_clusters, upper), k_max=upper, seed=seed).k
