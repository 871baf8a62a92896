"""The assign service over a store: idempotent by chat_id, exact counts, crash-safe rebuild."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from kura_stream.records import ConversationPoint
from kura_stream.service.assigner import Assigner
from kura_stream.stages.assign import AssignParams
from kura_stream.types import ClusterEventKind, EmbeddedConversation, Summary
from tests.fakes.memory_store import MemoryClusterStore

DIM = 16
PARAMS = AssignParams(join_similarity=0.8, birth_similarity=0.8, min_birth_size=3)


def _items(
    n: int, centres: int = 3, seed: int = 0, prefix: str = "c"
) -> list[EmbeddedConversation]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, DIM))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    now = datetime.now(UTC)
    items = []
    for i in range(n):
        v = means[i % centres] + rng.normal(scale=0.05, size=DIM)
        chat_id = f"{prefix}{i}"
        items.append(
            EmbeddedConversation(
                chat_id=chat_id,
                summary=Summary(chat_id=chat_id, summary=f"summary {i}"),
                vector=tuple(float(x) for x in v / np.linalg.norm(v)),
                embedder="test",
                created_at=now,
                received_at=now,
            )
        )
    return items


def _cluster_total(store: MemoryClusterStore) -> int:
    return sum(c.meta.count for c in store.list_clusters())


def test_counts_sum_to_conversations_and_store_agrees() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    items = _items(90)
    events = []
    for start in range(0, 90, 7):
        events += assigner.process(items[start : start + 7]).events
    assert store.count_conversations() == 90
    clustered = sum(store.count_conversations(c.cluster_id) for c in store.list_clusters())
    assert clustered + assigner.state.outliers_total == 90
    assert _cluster_total(store) == clustered
    assert (
        sum(e.kind == ClusterEventKind.CREATED for e in events) == len(store.list_clusters()) == 3
    )


def test_redelivery_never_counts_twice() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    items = _items(30)
    assigner.process(items[:20])
    again = assigner.process(items[10:30])  # 10 redelivered, 10 new
    assert again.duplicates == 10
    assert {a.chat_id for a in again.assignments} >= {i.chat_id for i in items[20:30]}
    assert store.count_conversations() == 30
    assert assigner.state.total == 30


def test_duplicates_within_a_batch_collapse() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    items = _items(5)
    batch = assigner.process([*items, *items])
    assert batch.duplicates == 5
    assert store.count_conversations() == 5


def test_restart_rebuilds_identical_state() -> None:
    store = MemoryClusterStore(DIM)
    first = Assigner(store, PARAMS, min_size_shown=3)
    items = _items(60, seed=4)
    first.process(items[:40])
    second = Assigner(store, PARAMS, min_size_shown=3)  # as after a crash
    assert sorted(second.state.ids) == sorted(first.state.ids)
    assert second.state.total == first.state.total == 40
    second.process(items[40:])
    assert store.count_conversations() == 60
    clustered = sum(store.count_conversations(c.cluster_id) for c in store.list_clusters())
    assert clustered + second.state.outliers_total == 60


def test_outliers_rehomed_by_a_birth_are_rewritten_in_the_store() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    items = _items(3, centres=1)
    assigner.process(items[:1])
    assigner.process(items[1:2])
    assert store.count_conversations() == 2
    assert all(p.cluster_id is None for p in store.get_conversations(["c0", "c1"]))
    batch = assigner.process(items[2:])
    born = [e for e in batch.events if e.kind == ClusterEventKind.CREATED]
    assert len(born) == 1
    assert {p.cluster_id for p in store.get_conversations(["c0", "c1", "c2"])} == {
        born[0].cluster_id
    }


def test_clusters_lost_in_a_crash_are_recreated_and_announced() -> None:
    store = MemoryClusterStore(DIM)
    first = Assigner(store, PARAMS, min_size_shown=3)
    first.process(_items(30))
    lost = [c.cluster_id for c in store.list_clusters()]
    store.delete_clusters(lost)  # as if the process died before writing its clusters
    second = Assigner(store, PARAMS, min_size_shown=3)
    assert sorted(c.cluster_id for c in store.list_clusters()) == sorted(lost)
    batch = second.process([])
    created = {e.cluster_id for e in batch.events if e.kind == ClusterEventKind.CREATED}
    assert created == set(lost)
    assert second.process([]).events == []


def test_learnt_thresholds_place_the_stream_and_a_restart_continues_it() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, AssignParams(), min_size_shown=3)
    items = _items(300, seed=6)
    for start in range(0, 200, 10):
        assigner.process(items[start : start + 10])
    restarted = Assigner(store, AssignParams(), min_size_shown=3)  # as after a crash
    assert restarted.state.birth_threshold(AssignParams()) == pytest.approx(
        assigner.state.birth_threshold(AssignParams()), abs=1e-6
    )
    for start in range(200, 300, 10):
        restarted.process(items[start : start + 10])
    assert len(store.list_clusters()) == 3
    assert restarted.state.outliers_total <= 30
    clustered = sum(store.count_conversations(c.cluster_id) for c in store.list_clusters())
    assert clustered + restarted.state.outliers_total == store.count_conversations() == 300
    assert _cluster_total(store) == clustered


def test_reload_rehomes_waiting_outliers_and_writes_them() -> None:
    store = MemoryClusterStore(DIM)
    never = AssignParams(join_similarity=1.0, birth_similarity=1.0, min_birth_size=3)
    items = _items(60, seed=5)
    Assigner(store, never, min_size_shown=3).process(items)  # every one waits
    # As a recompute leaves it: the first 45 in a cluster per centre, the last 15 waiting.
    placed = [
        ConversationPoint(chat_id=p.chat_id, vector=p.vector, cluster_id=f"k{i % 3}",
                          payload=p.payload)
        for i, p in enumerate(store.get_conversations([i.chat_id for i in items[:45]]))
    ]  # fmt: skip
    store.upsert_conversations(placed)
    assigner = Assigner(store, AssignParams(), min_size_shown=3)
    assert assigner.state.outliers_total == 15  # a start does not re-home: the stream goes on
    batch = assigner.reload()
    moved = {a.chat_id for a in batch.assignments}
    assert moved <= {i.chat_id for i in items[45:]}
    assert len(moved) >= 12  # the rest sit more than z std below their cluster's members
    assert all(a.cluster_id == f"k{int(a.chat_id[1:]) % 3}" for a in batch.assignments)
    assert assigner.state.outliers_total == 15 - len(moved)
    stored = store.get_conversations([i.chat_id for i in items])
    assert {p.chat_id for p in stored if p.cluster_id is None} == set(assigner.state.outlier_ids)
    counts = {c.cluster_id: c.meta.count for c in store.list_clusters()}
    assert counts == {f"k{r}": 15 + sum(int(c[1:]) % 3 == r for c in moved) for r in range(3)}
    assert {e.kind for e in batch.events} <= {ClusterEventKind.GROWN}
