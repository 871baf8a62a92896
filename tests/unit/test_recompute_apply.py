"""A recompute applied beside the stream: members moved outside the lock, arrivals replayed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from kura_stream.adapters.edge_store import EdgeClusterStore
from kura_stream.adapters.stores import PAYLOAD_FIELD, point_id
from kura_stream.protocols import ClusterNamer
from kura_stream.records import ConversationPoint
from kura_stream.service.assigner import Assigner, StoredMembers
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.recompute import RecomputeParams
from kura_stream.service.recompute_apply import Applying
from kura_stream.service.recompute_runner import Recomputer
from kura_stream.stages.assign import AssignParams, ClusterState
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import ClusterLabel, EmbeddedConversation, Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.no_outputs import NoOutputs
from tests.unit.test_recompute import DIM, _items

PARAMS = AssignParams(0.8, 0.8, 3)


def _two_topics(n: int, offset: int = 0) -> list[EmbeddedConversation]:
    """n conversations on two topics: two clusters, too few for UMAP (its compile is slow)."""
    return [item for i, item in enumerate(_items(2 * n, offset=offset)) if i % 4 < 2][:n]


class _StreamDuringNaming:
    """Names offline; on its first call the stream writes: arrivals, a redelivery, a deletion."""

    name = "offline-with-traffic"

    def __init__(self, assigner: Assigner) -> None:
        self.assigner = assigner
        self.inner = OfflineClusterNamer()
        self.done = False

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        if not self.done:
            self.done = True
            self.assigner.process(_two_topics(8, offset=160))
            self.assigner.process(_two_topics(2))  # sent again: counted in the store
            self.assigner.store.delete_conversations(["c4"])
        return await self.inner.label(members, contrast)


def _recomputer(
    store: EdgeClusterStore, assigner: Assigner, namer: ClusterNamer, *, k: int
) -> Recomputer:
    """A Recomputer over store and assigner at k clusters, with the offline parent namer."""
    return Recomputer(
        store=store,
        assigner=assigner,
        namer=namer,
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(k=k, top_level=2, min_size_shown=3),
        outputs=NoOutputs(),
        metrics=ServiceMetrics(),
        write_lock=asyncio.Lock(),
    )


async def test_a_recompute_applied_aside_places_what_arrived_during_it(tmp_path: Path) -> None:
    store = EdgeClusterStore(tmp_path / "store", DIM, durability="none")
    try:
        assigner = Assigner(store, PARAMS, min_size_shown=3)
        assigner.process(_two_topics(80))
        recomputer = _recomputer(store, assigner, _StreamDuringNaming(assigner), k=2)
        status = await recomputer.run("r1")
        assert status.state == "completed", status.detail
        assert {"plan_s", "write_s", "locked_s"} <= set(recomputer.timings)
        stored = [p for batch in store.iter_conversations(100) for p in batch]
        assert len(stored) == 87
        base = {c.cluster_id: c for c in store.list_clusters() if c.meta.level == 0}
        assert all(p.cluster_id in base for p in stored)
        for cid, cluster in base.items():
            assert cluster.meta.count == store.count_conversations(cid)
        # The assigner's state is the one a rebuild from the store gives.
        rebuilt = ClusterState.rebuild(DIM, StoredMembers(store), params=PARAMS)
        state = assigner.state
        assert state.total == rebuilt.total == 87
        order = [state.index_of(cid) for cid in rebuilt.ids]
        assert sorted(state.ids) == sorted(rebuilt.ids)
        assert (state.counts[order] == rebuilt.counts).all()
        np.testing.assert_allclose(state.sums[order], rebuilt.sums, atol=1e-4)
        assert assigner.meta.keys() == {c.cluster_id for c in store.list_clusters()}
        # The stream goes on over the new clusters.
        batch = assigner.process(_two_topics(4, offset=400))
        assert all(a.cluster_id in base for a in batch.assignments)
    finally:
        store.close()


async def test_a_recompute_failing_midway_leaves_the_assigner_following_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeClusterStore(tmp_path / "store", DIM, durability="none")
    try:
        assigner = Assigner(store, PARAMS, min_size_shown=3)
        assigner.process(_two_topics(80))

        def fail(self: Applying, *, final: bool) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(Applying, "write_clusters", fail)
        recomputer = _recomputer(store, assigner, OfflineClusterNamer(), k=3)
        status = await recomputer.run("r1")
        assert status.state == "failed"
        rebuilt = ClusterState.rebuild(DIM, StoredMembers(store), params=PARAMS)
        assert sorted(assigner.state.ids) == sorted(rebuilt.ids)
        assert assigner.state.total == 80
    finally:
        store.close()


def _point(chat_id: str, cluster_id: str | None, **payload: object) -> ConversationPoint:
    vector = np.zeros(DIM, np.float32)
    vector[hash(chat_id) % DIM] = 1.0
    return ConversationPoint(chat_id, vector, cluster_id, dict(payload))


def test_the_embedded_store_reads_blocks_moves_and_journals(tmp_path: Path) -> None:
    store = EdgeClusterStore(tmp_path / "store", DIM, durability="none")
    try:
        at = datetime(2026, 1, 2, tzinfo=UTC)
        store.upsert_conversations(
            [
                _point("a", "k1", assigned_at=at.isoformat(), duplicates=2, summary={"x": 1}),
                _point("b", None, assigned_at=at.isoformat()),
            ]
        )
        journal = store.watch_conversations()
        blocks = list(store.iter_member_blocks(batch_size=1))
        assert sorted(c for b in blocks for c in b.chat_ids) == ["a", "b"]
        assert sum(b.duplicates for b in blocks) == 2
        assert all(b.arrived.tolist() == [at.timestamp()] for b in blocks)
        assert all(b.vectors.shape == (1, DIM) for b in blocks)
        store.set_cluster_ids({"a": "k2", "b": "k2", "gone": "k2"})
        moved = store.get_conversations(["a", "b"])
        assert [p.cluster_id for p in moved] == ["k2", "k2"]
        assert moved[0].payload["summary"] == {"x": 1}  # the payload is untouched
        assert journal.drain() == []  # a recompute's own moves are not journaled
        store.upsert_conversations([_point("c", None)])
        store.delete_conversations(["b"])
        assert journal.drain() == ["b", "c"]
        store.stop_watching(journal)
        store.upsert_conversations([_point("d", None)])
        assert journal.drain() == []
    finally:
        store.close()


def test_conversations_stored_by_an_earlier_version_read_their_arrival_from_the_json(
    tmp_path: Path,
) -> None:
    store = EdgeClusterStore(tmp_path / "store", DIM, durability="none")
    try:
        at = datetime(2026, 1, 2, tzinfo=UTC)
        user = {"assigned_at": at.isoformat(), "duplicates": 3}
        old = {"chat_id": "old", "cluster_id": "k1", PAYLOAD_FIELD: json.dumps(user)}
        vector = [1.0] + [0.0] * (DIM - 1)
        store._write(store._conversations, [(point_id("old"), vector, old)])
        (block,) = store.iter_member_blocks()
        assert block.chat_ids == ["old"]
        assert block.cluster_ids == ["k1"]
        assert block.arrived.tolist() == [at.timestamp()]
        assert block.duplicates == 3
    finally:
        store.close()
