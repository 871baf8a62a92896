"""Learnt thresholds: member spreads, the pooled fallback, the background floor, the window."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.stages.assign_thresholds import (
    ArrivalWindow,
    adaptive_join_thresholds,
    loo_similarities,
    spread_row,
)


def _units(n: int, dim: int, seed: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_loo_similarity_is_to_the_centroid_of_the_other_members() -> None:
    members = _units(6, 8, seed=1)
    total = members.sum(axis=0, dtype=np.float64)
    sims = loo_similarities(members, total)
    for i, member in enumerate(members):
        others = np.delete(members, i, axis=0).sum(axis=0)
        assert sims[i] == pytest.approx(member @ others / np.linalg.norm(others), abs=1e-6)
    assert np.isnan(loo_similarities(members[:1], members[0].astype(np.float64))).all()


def test_a_large_cluster_asks_mean_minus_z_std_of_its_own_members() -> None:
    sims = np.random.default_rng(0).normal(0.7, 0.05, size=400)
    spread = np.stack([spread_row(sims), spread_row(np.full(400, 0.9))])
    got = adaptive_join_thresholds(spread, background=None, z=2.0, min_members=50)
    assert got[0] == pytest.approx(sims.mean() - 2.0 * sims.std(ddof=1), abs=1e-5)
    assert got[1] == pytest.approx(0.9, abs=1e-5)


def test_a_small_cluster_borrows_the_pooled_spread() -> None:
    rng = np.random.default_rng(1)
    big = spread_row(rng.normal(0.6, 0.1, size=1000))
    founders = spread_row(np.array([0.9, 0.91, 0.9, 0.91, 0.9]))  # picked for being close
    got = adaptive_join_thresholds(
        np.stack([big, founders]), background=None, z=2.0, min_members=50
    )
    # Its own mean, with a std near the pooled 0.1 rather than its founders' 0.005.
    assert 0.9 - 2 * 0.11 < got[1] < 0.9 - 2 * 0.08


def test_no_cluster_asks_less_than_its_background() -> None:
    spread = np.stack([spread_row(np.random.default_rng(2).normal(0.3, 0.15, size=500))])
    loose = adaptive_join_thresholds(spread, background=None, z=2.0, min_members=20)
    floored = adaptive_join_thresholds(spread, background=np.array([0.28]), z=2.0, min_members=20)
    assert loose[0] < 0.05
    assert floored[0] == pytest.approx(0.28)


def test_a_cluster_with_nothing_recorded_takes_nobody_until_something_is() -> None:
    assert adaptive_join_thresholds(np.zeros((1, 3)), background=None, z=2.0, min_members=5)[
        0
    ] == float("inf")


def _kth_brute_force(vectors: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    kth: npt.NDArray[np.float32] = -np.sort(-sims, axis=1)[:, k - 1]
    return kth


def test_the_window_keeps_each_arrivals_kth_neighbour_exactly_as_arrivals_come_and_go() -> None:
    vectors = _units(130, 6, seed=3)
    window = ArrivalWindow(dim=6, size=40, neighbours=3)
    for i, v in enumerate(vectors):
        window.push(v)
        held = vectors[max(0, i + 1 - 40) : i + 1]
        if len(held) > 3:
            got = np.sort(window.kth_similarities())
            np.testing.assert_allclose(got, np.sort(_kth_brute_force(held, 3)), atol=1e-6)
        np.testing.assert_allclose(window.mean, held.mean(axis=0), atol=1e-5)


def test_no_birth_before_the_window_has_enough_arrivals() -> None:
    window = ArrivalWindow(dim=6, size=100, neighbours=4)
    for v in _units(49, 6, seed=4):
        window.push(v)
    assert window.birth_similarity(quantile=0.5, min_points=50) == float("inf")
    window.push(_units(1, 6, seed=5)[0])
    assert np.isfinite(window.birth_similarity(quantile=0.5, min_points=50))
