"""choose_k: the number of clusters comes from the data, whatever its similarity scale."""

from __future__ import annotations

import numpy as np
import pytest

from kura_stream.stages.choose_k import candidate_ks, choose_k, k_bound


def groups(k: int, n: int, spread: float, seed: int = 0) -> np.ndarray:
    """n unit vectors around k random centres; spread sets how loose each group is."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, 64))
    rows = centres[rng.integers(k, size=n)] + spread * rng.normal(size=(n, 64))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("k", "spread"), [(5, 0.3), (5, 1.0), (12, 0.5)])
def test_finds_the_number_of_groups_at_any_scale(k: int, spread: float) -> None:
    vectors = groups(k, 1500, spread)
    assert choose_k(vectors, k_max=k_bound(len(vectors), 20, 2000)).k == k


def test_tight_groups_sitting_close_together_are_still_told_apart() -> None:
    # Every pair of vectors is at least 0.9 cosine-similar: a fixed threshold sees one blob.
    base = groups(6, 1200, 0.25, seed=1)
    shared = np.ones(64, np.float32) / 8.0
    vectors = base * 0.05 + shared * 2.0
    assert choose_k(vectors, k_max=60).k == 6


def test_bounds_and_tiny_inputs() -> None:
    assert candidate_ks(2, 2) == [2]
    ks = candidate_ks(2, 100)
    assert ks[0] == 2
    assert ks[-1] == 100
    assert ks == sorted(set(ks))
    assert choose_k(np.eye(2, dtype=np.float32), k_max=5).k == 1
    assert k_bound(100, 20, 2000) == 5
    assert k_bound(10**6, 20, 2000) == 2000


def test_the_batch_command_reads_k() -> None:
    import typer

    from kura_stream.cli.batch import _base_k

    assert _base_k("auto") == "auto"
    assert _base_k("kura") is None
    assert _base_k("12") == 12
    with pytest.raises(typer.BadParameter, match="positive number"):
        _base_k("0")
