"""The 2-D map: seeded UMAP, transform without refit, tiny inputs, cluster positions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.protocols import Projector
from kura_stream.stages.project import UmapProjector, project_clusters
from kura_stream.types import Cluster

DIM = 24


def blobs(per: int = 20, seed: int = 0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, DIM))
    x = np.concatenate([c + 0.15 * rng.normal(size=(per, DIM)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(3), per)


@pytest.fixture(scope="module")
def fitted() -> tuple[UmapProjector, npt.NDArray[np.float32]]:
    """One fit for the module: UMAP's first call pays numba's compile time."""
    x, _ = blobs()
    projector = UmapProjector(seed=0)
    return projector, projector.fit_transform(x)


def test_fit_transform_shape(fitted: tuple[UmapProjector, npt.NDArray[np.float32]]) -> None:
    projector, positions = fitted
    assert projector.uses_umap
    assert positions.shape == (60, 2)
    assert positions.dtype == np.float32
    assert np.isfinite(positions).all()


def test_same_seed_same_map(fitted: tuple[UmapProjector, npt.NDArray[np.float32]]) -> None:
    x, _ = blobs()
    again = UmapProjector(seed=0).fit_transform(x)
    np.testing.assert_allclose(again, fitted[1], atol=1e-5)


def test_transform_places_new_points_near_their_neighbours_without_refit(
    fitted: tuple[UmapProjector, npt.NDArray[np.float32]],
) -> None:
    projector, positions = fitted
    x, gold = blobs()
    embedding_before = projector._umap.embedding_.copy()
    rng = np.random.default_rng(9)
    new = x[[0, 25, 50]] + 0.02 * rng.normal(size=(3, DIM)).astype(np.float32)
    placed = projector.transform(new)
    assert placed.shape == (3, 2)
    np.testing.assert_array_equal(projector._umap.embedding_, embedding_before)
    for point, blob in zip(placed, [0, 1, 2], strict=True):
        nearest = np.argsort(np.linalg.norm(positions - point, axis=1))[:5]
        assert (gold[nearest] == blob).all()
    assert projector.transform(x[:0]).shape == (0, 2)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_tiny_inputs_use_a_linear_map(n: int) -> None:
    x, _ = blobs()
    projector = UmapProjector()
    positions = projector.fit_transform(x[:n])
    assert positions.shape == (n, 2)
    assert not projector.uses_umap
    assert projector.fitted
    np.testing.assert_allclose(UmapProjector().fit_transform(x[:n]), positions)
    assert projector.transform(x[10:14]).shape == (4, 2)


def test_identical_points_fall_back_instead_of_failing() -> None:
    same = np.ones((6, DIM), dtype=np.float32)
    positions = UmapProjector().fit_transform(same)
    assert positions.shape == (6, 2)
    assert np.isfinite(positions).all()


def test_transform_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit_transform"):
        UmapProjector().transform(np.zeros((1, DIM), dtype=np.float32))


class TableProjector:
    """A fake Projector: positions are the first two coordinates."""

    def fit_transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self.transform(vectors)

    def transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(vectors[:, :2], dtype=np.float32)


def tree() -> tuple[list[Cluster], dict[str, npt.NDArray[np.float32]]]:
    clusters = [
        Cluster(id="a", name="a", count=1, parent_id="p"),
        Cluster(id="b", name="b", count=3, parent_id="p"),
        Cluster(id="c", name="c", count=0, parent_id="q"),
        Cluster(id="d", name="d", count=0, parent_id="q"),
        Cluster(id="p", name="p", count=4, level=1, parent_id="r"),
        Cluster(id="q", name="q", count=0, level=1, parent_id="r"),
        Cluster(id="r", name="r", count=4, level=2),
        Cluster(id="lonely", name="lonely", count=2, level=1),
    ]
    cents = {
        "a": np.array([0.0, 0.0, 1.0], dtype=np.float32),
        "b": np.array([4.0, 8.0, 1.0], dtype=np.float32),
        "c": np.array([10.0, 10.0, 1.0], dtype=np.float32),
        "d": np.array([20.0, 30.0, 1.0], dtype=np.float32),
        "lonely": np.array([7.0, -7.0, 1.0], dtype=np.float32),
    }
    return clusters, cents


def test_project_clusters_places_parents_at_count_weighted_means() -> None:
    clusters, cents = tree()
    out = {c.id: (c.x, c.y) for c in project_clusters(clusters, cents, projector=TableProjector())}
    assert out["a"] == (0.0, 0.0)
    assert out["p"] == pytest.approx((3.0, 6.0))  # (1 * a + 3 * b) / 4
    assert out["q"] == pytest.approx((15.0, 20.0))  # counts all 0: plain mean
    assert out["r"] == pytest.approx((3.0, 6.0))  # q weighs 0
    assert out["lonely"] == pytest.approx((7.0, -7.0))  # no child: its own centroid


def test_project_clusters_keeps_order_and_fields() -> None:
    clusters, cents = tree()
    out = project_clusters(clusters, cents, projector=TableProjector(), refit=False)
    assert [c.id for c in out] == [c.id for c in clusters]
    assert [c.parent_id for c in out] == [c.parent_id for c in clusters]


def test_project_clusters_with_umap(fitted: tuple[UmapProjector, npt.NDArray[np.float32]]) -> None:
    x, _ = blobs()
    clusters = [Cluster(id=f"c{i}", name=f"c{i}", count=1) for i in range(len(x))]
    cents = {c.id: x[i] for i, c in enumerate(clusters)}
    out = project_clusters(clusters, cents, projector=fitted[0], refit=False)
    np.testing.assert_allclose([[c.x, c.y] for c in out], fitted[0].transform(x), atol=1e-5)


def test_projectors_implement_the_protocol() -> None:
    assert isinstance(UmapProjector(), Projector)
    assert isinstance(TableProjector(), Projector)
