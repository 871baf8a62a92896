"""Base clustering: Kura's k, seeded k-means, HDBSCAN with an honest outlier policy, centroids."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import adjusted_rand_score

from kura_stream.stages.cluster import (
    OUTLIER,
    attach_outliers,
    centroids,
    hdbscan_clusters,
    kmeans_clusters,
    kura_k,
    relabel_by_first_seen,
)


def blobs(
    n_centres: int = 4, per: int = 25, dim: int = 32, spread: float = 0.08, seed: int = 1
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.concatenate([c + spread * rng.normal(size=(per, dim)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(n_centres), per)


@pytest.mark.parametrize(("n", "k"), [(0, 0), (1, 1), (10, 1), (11, 2), (95, 10), (1000, 100)])
def test_kura_k_is_ceil_n_over_10(n: int, k: int) -> None:
    assert kura_k(n) == k


def test_kura_k_per_group_is_configurable() -> None:
    assert kura_k(100, clusters_per_group=25) == 4
    with pytest.raises(ValueError, match="clusters_per_group"):
        kura_k(10, clusters_per_group=0)


def test_kmeans_default_k_follows_kura() -> None:
    x, _ = blobs(per=24)  # 96 points -> ceil(96 / 10) = 10 clusters
    labels = kmeans_clusters(x)
    assert labels.shape == (96,)
    assert set(labels.tolist()) == set(range(10))


def test_kmeans_recovers_blobs_at_the_right_k() -> None:
    x, gold = blobs()
    labels = kmeans_clusters(x, k=4)
    assert adjusted_rand_score(gold, labels) == pytest.approx(1.0)


def test_kmeans_is_deterministic_and_numbered_by_first_appearance() -> None:
    x, _ = blobs(per=30)
    a = kmeans_clusters(x, k=7, seed=3)
    b = kmeans_clusters(x, k=7, seed=3)
    assert np.array_equal(a, b)
    first_seen = list(dict.fromkeys(a.tolist()))
    assert first_seen == list(range(len(first_seen)))


def test_kmeans_edge_sizes() -> None:
    x, _ = blobs(per=2)
    assert kmeans_clusters(x[:0]).shape == (0,)
    assert kmeans_clusters(x[:1]).tolist() == [0]
    assert len(set(kmeans_clusters(x[:3], k=50).tolist())) == 3  # k clamped to n
    same = np.ones((6, 4), dtype=np.float32)
    assert set(kmeans_clusters(same, k=3).tolist()) <= {0, 1, 2}  # duplicates: no crash


def with_outliers(seed: int = 2) -> tuple[npt.NDArray[np.float32], int]:
    x, _ = blobs(per=30)
    rng = np.random.default_rng(seed)
    far = rng.normal(size=(6, x.shape[1]))
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    return np.concatenate([x, far.astype(np.float32)]), x.shape[0]


def test_hdbscan_keep_labels_scattered_points_as_outliers() -> None:
    x, n_core = with_outliers()
    labels = hdbscan_clusters(x, min_cluster_size=10, noise="keep")
    # HDBSCAN may still hang a far point on a tight cluster; most scattered points are noise
    # and none of them forms a cluster of its own.
    assert np.sum(labels[n_core:] == OUTLIER) >= 3
    assert set(labels.tolist()) == {OUTLIER, 0, 1, 2, 3}
    _, gold = blobs(per=30)
    assert adjusted_rand_score(gold, labels[:n_core]) == pytest.approx(1.0)


def test_hdbscan_nearest_attaches_each_outlier_to_its_most_similar_cluster() -> None:
    x, _ = with_outliers()
    kept = hdbscan_clusters(x, min_cluster_size=10, noise="keep")
    attached = hdbscan_clusters(x, min_cluster_size=10)
    assert OUTLIER not in attached.tolist()
    clustered = kept != OUTLIER
    assert np.array_equal(attached[clustered], kept[clustered])
    cents = centroids(x, kept)
    expected = np.argmax(x[~clustered] @ cents.T, axis=1)
    assert np.array_equal(attached[~clustered], expected)


def test_hdbscan_on_too_few_points() -> None:
    x, _ = blobs(per=1)
    assert hdbscan_clusters(x, min_cluster_size=10, noise="keep").tolist() == [OUTLIER] * 4
    assert hdbscan_clusters(x, min_cluster_size=10).tolist() == [0] * 4
    assert hdbscan_clusters(x[:0]).shape == (0,)


def test_attach_outliers_without_outliers_is_identity() -> None:
    x, gold = blobs()
    assert np.array_equal(attach_outliers(x, gold), gold)


def test_centroids_are_unit_means_and_skip_outliers() -> None:
    x, gold = blobs()
    labels = gold.copy()
    labels[0] = OUTLIER
    cents = centroids(x, labels)
    assert cents.shape == (4, x.shape[1])
    assert cents.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cents, axis=1), 1.0, rtol=1e-5)
    mean = x[1:25].mean(axis=0)
    np.testing.assert_allclose(cents[0], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-6)


def test_centroids_reject_misaligned_labels() -> None:
    x, gold = blobs()
    with pytest.raises(ValueError, match="labels shape"):
        centroids(x, gold[:-1])


def test_relabel_keeps_outliers() -> None:
    assert relabel_by_first_seen([5, -1, 5, 2, -1, 9]).tolist() == [0, -1, 0, 1, -1, 2]
