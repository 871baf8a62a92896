"""The one ClusterStore contract: every implementation, the in-memory fake included, passes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient

from kura_stream.adapters.edge_store import EdgeClusterStore
from kura_stream.adapters.qdrant_store import QdrantClusterStore
from kura_stream.adapters.stores import StoreClosedError
from kura_stream.protocols import ClusterStore
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint
from tests.fakes.memory_store import MemoryClusterStore

DIM = 16
Vectors = npt.NDArray[np.float32]

FACTORIES: dict[str, Callable[[Path], ClusterStore]] = {
    "memory": lambda _: MemoryClusterStore(DIM),
    "qdrant-memory": lambda _: QdrantClusterStore(QdrantClient(location=":memory:"), "t", DIM),
    "edge": lambda tmp: EdgeClusterStore(tmp / "store", DIM),
}


@pytest.fixture(params=list(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClusterStore]:
    opened = FACTORIES[request.param](tmp_path)
    yield opened
    opened.close()


def units(n: int, seed: int = 0, dim: int = DIM) -> Vectors:
    rng = np.random.default_rng(seed)
    v: Vectors = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def convs(n: int, clusters: int = 3, seed: int = 0, prefix: str = "c") -> list[ConversationPoint]:
    vecs = units(n, seed)
    return [
        ConversationPoint(f"{prefix}{i}", vecs[i], f"k{i % clusters}", {"i": i, "tags": ["a", i]})
        for i in range(n)
    ]


NESTED = {
    "summary": "Wie koche ich Reis? ☃",
    "n": 3,
    "x": 1.5,
    "flag": True,
    "none": None,
    "big": 2**53 + 1,
    "facets": {"task": "cooking", "scores": [1, 2.5, {"deep": [None, "z"]}], "empty": {}},
}


def test_is_a_cluster_store(store: ClusterStore) -> None:
    assert isinstance(store, ClusterStore)
    assert store.dim == DIM


def test_upsert_get_round_trip(store: ClusterStore) -> None:
    points = convs(5)
    points[2] = ConversationPoint("c2", points[2].vector, None, NESTED)
    store.upsert_conversations(points)
    got = store.get_conversations(["c3", "missing", "c2", "c0"])
    assert [p.chat_id for p in got] == ["c3", "c2", "c0"]
    for p in got:
        want = points[int(p.chat_id[1:])]
        assert p.vector.dtype == np.float32
        np.testing.assert_allclose(p.vector, want.vector, atol=1e-6)
        assert p.cluster_id == want.cluster_id
        assert dict(p.payload) == dict(want.payload)
    assert got[1].cluster_id is None
    assert got[1].payload == NESTED


def test_vectors_are_stored_normalised(store: ClusterStore) -> None:
    raw = np.arange(1, DIM + 1, dtype=np.float32)
    store.upsert_conversations([ConversationPoint("a", raw * 3)])
    store.upsert_clusters([ClusterPoint("k", raw)])
    (got,) = store.get_conversations(["a"])
    np.testing.assert_allclose(got.vector, raw / np.linalg.norm(raw), atol=1e-6)
    np.testing.assert_allclose(store.get_clusters(["k"])[0].centroid, got.vector, atol=1e-6)


def test_upsert_is_idempotent_by_key_latest_wins(store: ClusterStore) -> None:
    first, second = units(2, seed=1)
    store.upsert_conversations([ConversationPoint("a", first, "k1", {"v": 1})])
    store.upsert_conversations([ConversationPoint("a", second, "k2", {"v": 2})])
    store.upsert_conversations(
        [ConversationPoint("b", first, "k1"), ConversationPoint("b", second, "k1", {"v": 3})]
    )
    assert store.count_conversations() == 2
    (a,) = store.get_conversations(["a"])
    np.testing.assert_allclose(a.vector, second, atol=1e-6)
    assert (a.cluster_id, dict(a.payload)) == ("k2", {"v": 2})
    assert dict(store.get_conversations(["b"])[0].payload) == {"v": 3}


def test_delete_conversations(store: ClusterStore) -> None:
    store.upsert_conversations(convs(6))
    store.delete_conversations(["c1", "c4", "never-stored"])
    store.delete_conversations([])
    assert store.count_conversations() == 4
    assert store.get_conversations(["c1", "c4"]) == []
    left = ["c0", "c2", "c3", "c5"]
    assert [p.chat_id for p in store.get_conversations(left)] == left
    assert all(h.id not in {"c1", "c4"} for h in store.search_conversations(units(1)[0], 10))


def test_exact_counts_overall_and_per_cluster(store: ClusterStore) -> None:
    store.upsert_conversations(convs(100, clusters=3))
    store.upsert_conversations([ConversationPoint("outlier", units(1, 9)[0])])
    assert store.count_conversations() == 101
    assert [store.count_conversations(f"k{j}") for j in range(3)] == [34, 33, 33]
    assert store.count_conversations("no-such-cluster") == 0


def test_iter_conversations_yields_every_point_once(store: ClusterStore) -> None:
    points = convs(250)
    store.upsert_conversations(points)
    batches = list(store.iter_conversations(batch_size=64))
    assert len(batches) >= 4
    assert all(0 < len(b) <= 64 for b in batches)
    seen = [p for b in batches for p in b]
    assert sorted(p.chat_id for p in seen) == sorted(p.chat_id for p in points)
    by_id = {p.chat_id: p for p in points}
    for p in seen:
        np.testing.assert_allclose(p.vector, by_id[p.chat_id].vector, atol=1e-6)
        assert p.cluster_id == by_id[p.chat_id].cluster_id


def test_conversations_in_cluster(store: ClusterStore) -> None:
    store.upsert_conversations(convs(30, clusters=3))
    members = store.conversations_in_cluster("k1", limit=100)
    assert sorted(p.chat_id for p in members) == sorted(f"c{i}" for i in range(1, 30, 3))
    assert all(p.vector.shape == (DIM,) for p in members)
    limited = store.conversations_in_cluster("k1", limit=4)
    assert len(limited) == 4
    assert all(p.cluster_id == "k1" for p in limited)
    assert store.conversations_in_cluster("k1", limit=0) == []
    assert store.conversations_in_cluster("nobody", limit=5) == []


def test_search_best_first_with_cosine_scores(store: ClusterStore) -> None:
    points = convs(200)
    store.upsert_conversations(points)
    matrix = np.stack([p.vector for p in points])
    query = points[17].vector
    hits = store.search_conversations(query, limit=10)
    assert len(hits) == 10
    assert hits[0].id == "c17"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    expected = matrix @ query
    for h in hits:
        assert h.score == pytest.approx(float(expected[int(h.id[1:])]), abs=1e-5)
    assert {h.id for h in hits} == {f"c{i}" for i in np.argsort(-expected)[:10]}
    assert store.search_conversations(query, limit=0) == []


def test_search_filtered_by_cluster(store: ClusterStore) -> None:
    points = convs(60, clusters=3)
    store.upsert_conversations(points)
    hits = store.search_conversations(points[0].vector, limit=50, cluster_id="k2")
    assert len(hits) == 20
    assert all(int(h.id[1:]) % 3 == 2 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert store.search_conversations(points[0].vector, limit=5, cluster_id="none") == []


RENAMED = ClusterMeta(
    name="Wie koche ich Reis? ☃",
    description="d",
    slug="s",
    count=2**53 + 1,
    parent_id="k0",
    level=1,
    x=1.5,
    y=-0.25,
    created_at=datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
    named_count=3,
    announced_count=4,
    namer="manual",
    naming_failed_count=5,
)
"""Every field of a cluster's meta set, unicode and a count past float precision included."""


def test_clusters_crud_and_search(store: ClusterStore) -> None:
    cents = units(8, seed=3)
    store.upsert_clusters(
        [ClusterPoint(f"k{i}", cents[i], ClusterMeta(name=f"n{i}", count=i)) for i in range(8)]
    )
    store.upsert_clusters([ClusterPoint("k3", cents[3], RENAMED)])
    assert sorted(c.cluster_id for c in store.list_clusters()) == [f"k{i}" for i in range(8)]
    got = store.get_clusters(["k3", "nope", "k1"])
    assert [c.cluster_id for c in got] == ["k3", "k1"]
    assert got[0].meta == RENAMED
    np.testing.assert_allclose(got[1].centroid, cents[1], atol=1e-6)
    hits = store.search_clusters(cents[5], limit=3)
    assert hits[0].id == "k5"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    store.delete_clusters(["k5", "unknown"])
    assert len(store.list_clusters()) == 7
    assert store.get_clusters(["k5"]) == []
    assert all(h.id != "k5" for h in store.search_clusters(cents[5], limit=8))
    assert store.count_conversations() == 0


def test_reassigning_cluster_updates_counts(store: ClusterStore) -> None:
    points = convs(9, clusters=3)
    store.upsert_conversations(points)
    moved = [ConversationPoint(p.chat_id, p.vector, "k0", p.payload) for p in points[1:3]]
    store.upsert_conversations(moved)
    counts = [store.count_conversations(f"k{j}") for j in range(3)]
    assert counts == [5, 2, 2]
    assert store.count_conversations() == 9
    members = sorted(p.chat_id for p in store.conversations_in_cluster("k0", 10))
    assert members == ["c0", "c1", "c2", "c3", "c6"]
    hits = store.search_conversations(points[1].vector, limit=3, cluster_id="k0")
    assert hits[0].id == "c1"


def test_empty_store(store: ClusterStore) -> None:
    q = units(1)[0]
    assert store.count_conversations() == 0
    assert store.count_conversations("k") == 0
    assert list(store.iter_conversations()) == []
    assert store.get_conversations(["x"]) == []
    assert store.get_conversations([]) == []
    assert store.conversations_in_cluster("k", 10) == []
    assert store.search_conversations(q, 5) == []
    assert store.search_conversations(q, 5, cluster_id="k") == []
    assert store.list_clusters() == []
    assert store.get_clusters([]) == []
    assert store.search_clusters(q, 5) == []
    store.upsert_conversations([])
    store.upsert_clusters([])
    store.delete_conversations(["x"])
    store.delete_clusters(["x"])
    assert store.count_conversations() == 0


def test_wrong_dim_vector_raises_clearly(store: ClusterStore) -> None:
    good = units(1)[0]
    bad = np.ones(DIM + 1, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"conversation 'bad'.*{DIM}-d"):
        store.upsert_conversations([ConversationPoint("ok", good), ConversationPoint("bad", bad)])
    assert store.count_conversations() == 0  # the batch is validated before anything is written
    with pytest.raises(ValueError, match=rf"cluster 'k'.*{DIM}-d"):
        store.upsert_clusters([ClusterPoint("k", bad)])
    with pytest.raises(ValueError, match=rf"{DIM}-d"):
        store.search_conversations(bad, 3)
    with pytest.raises(ValueError, match=rf"{DIM}-d"):
        store.search_clusters(np.ones((2, DIM), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="zero vector"):
        store.upsert_conversations([ConversationPoint("zero", np.zeros(DIM, np.float32))])
    with pytest.raises(ValueError, match="JSON"):
        store.upsert_conversations([ConversationPoint("obj", good, payload={"x": object()})])
    with pytest.raises(ValueError, match=r"cluster 'nan'.*JSON"):
        store.upsert_clusters([ClusterPoint("nan", good, ClusterMeta(x=float("nan")))])
    assert store.count_conversations() == 0
    assert store.list_clusters() == []


def test_closed_store_refuses_calls(store: ClusterStore) -> None:
    store.upsert_conversations(convs(2))
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreClosedError):
        store.count_conversations()
    with pytest.raises(StoreClosedError):
        store.upsert_conversations(convs(1))
