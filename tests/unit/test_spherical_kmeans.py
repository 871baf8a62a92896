"""Spherical k-means for recomputes: blocked, sampled, seeded from old centroids."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_rand_score

from kura_stream.stages.cluster import normalise
from kura_stream.stages.spherical_kmeans import (
    nearest,
    recluster,
    seed_centroids,
    spherical_kmeans,
)


def _blobs(
    n: int, k: int, dim: int = 32, seed: int = 0
) -> tuple[npt.NDArray[np.float32], list[int]]:
    rng = np.random.default_rng(seed)
    centres = normalise(rng.normal(size=(k, dim)).astype(np.float32))
    gold = rng.integers(k, size=n)
    vectors = normalise((centres[gold] + 0.1 * rng.normal(size=(n, dim))).astype(np.float32))
    return vectors, gold.tolist()


def test_nearest_in_blocks_equals_one_product() -> None:
    unit, _ = _blobs(1000, 6)
    centroids = unit[:40]
    whole = np.argmax(unit @ centroids.T, axis=1)
    assert np.array_equal(nearest(unit, centroids, block=7), whole)


def test_seeding_keeps_old_centroids_first_and_fills_k() -> None:
    unit, _ = _blobs(500, 5)
    old = [unit[3], unit[10]]
    init = seed_centroids(unit, old, 6, seed=1)
    assert init.shape == (6, unit.shape[1])
    assert np.allclose(init[0], unit[3])
    assert np.allclose(init[1], unit[10])
    assert np.allclose(np.linalg.norm(init, axis=1), 1.0, atol=1e-5)


def test_converged_centroids_change_nothing() -> None:
    unit, _ = _blobs(600, 4)
    labels, centroids = spherical_kmeans(unit, seed_centroids(unit, [], 4, seed=0))
    again, _ = spherical_kmeans(unit, centroids)
    assert np.array_equal(labels, again)


def test_a_sampled_fit_labels_every_row_like_a_full_fit() -> None:
    vectors, gold = _blobs(3000, 8, seed=2)
    full = recluster(vectors, [], 8, seed=0, fit_sample=10_000)
    sampled = recluster(vectors, [], 8, seed=0, fit_sample=400)
    assert sampled.shape == (3000,)
    assert adjusted_rand_score(gold, full) > 0.95
    assert adjusted_rand_score(full, sampled) > 0.95


def test_k_is_capped_by_the_rows_fitted() -> None:
    vectors, _ = _blobs(300, 3)
    labels = recluster(vectors, [], 500, seed=0, fit_sample=120)
    assert labels.max() < 120
