"""The assigner's rule for a chat_id met again: replay, duplicate, or conflicting duplicate."""

from __future__ import annotations

import pytest

from kura_stream.service.assigner import Assigner
from kura_stream.types import ClusterEventKind, EmbeddedConversation
from tests.fakes.memory_store import MemoryClusterStore
from tests.unit.test_assigner import DIM, PARAMS, _items


def _hashed(items: list[EmbeddedConversation], tag: str = "v1") -> list[EmbeddedConversation]:
    return [i.model_copy(update={"content_hash": f"{i.chat_id}-{tag}"}) for i in items]


def _sources(n: int, start: int = 0) -> list[str | None]:
    return [f"emb/0/{start + i}" for i in range(n)]


def test_a_batch_redelivered_after_a_crash_publishes_its_stored_outputs_again() -> None:
    store = MemoryClusterStore(DIM)
    items = _hashed(_items(30))
    first = Assigner(store, PARAMS, min_size_shown=3).process(items, _sources(30))
    # The process died before publishing: a new one gets the same records again.
    again = Assigner(store, PARAMS, min_size_shown=3).process(items, _sources(30))
    assert again.replayed == 30
    assert again.duplicates == 0
    assert again.conflicts == []
    placed = {a.chat_id: a.cluster_id for a in first.assignments}
    assert {a.chat_id: a.cluster_id for a in again.assignments} == placed
    clusters = {c for c in placed.values() if c}
    assert {e.cluster_id for e in again.events if e.kind == ClusterEventKind.GROWN} == clusters
    assert store.count_conversations() == 30


def test_the_same_content_sent_again_is_a_duplicate_counted_in_the_store() -> None:
    store = MemoryClusterStore(DIM)
    items = _hashed(_items(20))
    Assigner(store, PARAMS, min_size_shown=3).process(items, _sources(20))
    resent = Assigner(store, PARAMS, min_size_shown=3).process(items[:5], _sources(5, 100))
    assert (resent.duplicates, resent.replayed, resent.assignments) == (5, 0, [])
    # The same resend redelivered after a crash is not counted twice.
    redelivered = Assigner(store, PARAMS, min_size_shown=3)
    assert redelivered.duplicates_stored == 5
    redelivered.process(items[:5], _sources(5, 100))
    assert Assigner(store, PARAMS, min_size_shown=3).duplicates_stored == 5
    assert store.count_conversations() == 20


def test_other_content_under_a_stored_chat_id_is_a_conflict_and_the_first_stays() -> None:
    store = MemoryClusterStore(DIM)
    items = _hashed(_items(10))
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    assigner.process(items, _sources(10))
    changed = _hashed(_items(3, seed=7), tag="v2")
    batch = assigner.process(changed, _sources(3, 50))
    assert [index for index, _ in batch.conflicts] == [0, 1, 2]
    assert all("conflicting duplicate" in reason for _, reason in batch.conflicts)
    assert batch.assignments == []
    stored = {p.chat_id: p.payload["content_hash"] for p in store.get_conversations(["c0"])}
    assert stored == {"c0": "c0-v1"}


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_a_chat_id_twice_in_one_batch(tag: str) -> None:
    store = MemoryClusterStore(DIM)
    first = _hashed(_items(4))
    second = _hashed(_items(1), tag=tag)
    batch = Assigner(store, PARAMS, min_size_shown=3).process([*first, *second], _sources(5))
    assert store.count_conversations() == 4
    if tag == "v1":
        assert (batch.duplicates, batch.conflicts) == (1, [])
        assert store.get_conversations(["c0"])[0].payload["duplicates"] == 1
    else:
        assert batch.duplicates == 0
        assert [index for index, _ in batch.conflicts] == [4]


def test_a_failed_write_leaves_the_state_as_the_store_has_it() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3)
    assigner.process(_hashed(_items(12)), _sources(12))
    before = assigner.state.total

    def refuse(points: object) -> None:
        raise RuntimeError("disk full")

    store.upsert_conversations = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        assigner.process(_hashed(_items(6, prefix="n")), _sources(6, 12))
    assert assigner.state.total == before
