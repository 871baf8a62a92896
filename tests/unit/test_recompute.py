"""Full recompute over a store: hierarchy and map rebuilt, unchanged clusters keep their ids."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from kura_stream.records import ClusterPoint
from kura_stream.service.assigner import Assigner
from kura_stream.service.recompute import RecomputeParams, apply_recompute, plan_recompute
from kura_stream.service.recompute_runner import recompute_due
from kura_stream.settings import ClusteringSettings
from kura_stream.stages.assign import AssignParams
from kura_stream.stages.offline_namer import FALLBACK_NAME, OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import ClusterEventKind, EmbeddedConversation, Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.memory_store import MemoryClusterStore

DIM = 24
TOPICS = [
    "debug a python import error in a django project",
    "write a birthday poem for a friend",
    "translate a business email into spanish",
    "plan a three day trip to the mountains",
]


def _items(n: int, seed: int = 0, offset: int = 0) -> list[EmbeddedConversation]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(TOPICS), DIM))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    now = datetime.now(UTC)
    out = []
    for i in range(offset, offset + n):
        t = i % len(TOPICS)
        v = means[t] + rng.normal(scale=0.04, size=DIM)
        chat_id = f"c{i}"
        out.append(
            EmbeddedConversation(
                chat_id=chat_id,
                summary=Summary(
                    chat_id=chat_id, summary=f"The user asks to {TOPICS[t]}.", request=TOPICS[t]
                ),
                vector=tuple(float(x) for x in v / np.linalg.norm(v)),
                embedder="test",
                created_at=now,
                received_at=now,
            )
        )
    return out


async def test_recompute_keeps_ids_and_builds_hierarchy_and_map() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, AssignParams(0.8, 0.8, 3), min_size_shown=3)
    assigner.process(_items(80))
    before = {c.cluster_id: c.meta.count for c in store.list_clusters()}
    assert len(before) == 4
    plan = await plan_recompute(
        store,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(top_level=2, min_size_shown=3),
        request_id="r1",
    )
    assert plan is not None
    # Arrivals during the recompute are placed when it is applied.
    assigner.process(_items(8, offset=80))
    late = apply_recompute(store, plan)
    assigner.reload()
    assert late == 8
    clusters = store.list_clusters()
    base = {c.cluster_id: c for c in clusters if c.meta.level == 0}
    assert set(base) == set(before)  # unchanged clusters keep their ids
    assert sum(c.meta.count for c in base.values()) == store.count_conversations() == 88
    assert all(c.meta.name for c in base.values())
    top = [c for c in clusters if c.meta.parent_id is None]
    assert 1 <= len(top) <= 2
    assert all(c.meta.parent_id in {x.cluster_id for x in clusters} for c in base.values())
    xy = np.array([[c.meta.x, c.meta.y] for c in base.values()])
    assert np.isfinite(xy).all()
    assert len({tuple(p) for p in xy.round(4)}) == len(base)
    kinds = [e.kind for e in plan.events]
    assert ClusterEventKind.HIERARCHY_UPDATED in kinds
    assert ClusterEventKind.MAP_UPDATED in kinds
    assert all(e.request_id == "r1" for e in plan.events)
    assert assigner.state.total == 88


async def test_capped_k_keeps_the_largest_clusters_and_merges_the_rest() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, AssignParams(0.8, 0.8, 3), min_size_shown=3)
    items = _items(80)
    # Topics 0 and 1 get 20 more conversations each: the two largest clusters.
    more = [i for i in _items(80, offset=80) if int(i.chat_id[1:]) % 4 in (0, 1)]
    assigner.process(items + more)
    sizes = {c.cluster_id: c.meta.count for c in store.list_clusters()}
    largest = set(sorted(sizes, key=lambda cid: -sizes[cid])[:2])
    plan = await plan_recompute(
        store,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(max_clusters=2, top_level=1, min_size_shown=3),
    )
    assert plan is not None
    assert set(plan.base_centroids) == largest
    assert set(plan.matching.merged_into) == set(sizes) - largest
    apply_recompute(store, plan)
    base = [c for c in store.list_clusters() if c.meta.level == 0]
    assert sum(c.meta.count for c in base) == store.count_conversations() == 120


async def test_recompute_of_an_empty_store_is_a_no_op() -> None:
    store = MemoryClusterStore(DIM)
    plan = await plan_recompute(
        store,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(),
    )
    assert plan is None


@pytest.mark.parametrize(
    ("seconds_since", "arrived", "outliers", "total", "due"),
    [
        (10.0, 0, 900, 1000, False),  # nothing arrived: never
        (10.0, 10, 0, 1000, False),  # early, few arrivals, no outliers
        (601.0, 10, 0, 1000, True),  # on time
        (10.0, 5000, 0, 9000, True),  # on arrivals
        (10.0, 5000, 0, 100_000, False),  # a large store waits for 10% new
        (10.0, 10_000, 0, 100_000, True),
        (10.0, 10, 600, 1000, True),  # most wait as outliers, and enough of them
        (10.0, 10, 400, 500, False),  # most, but fewer than the minimum
        (10.0, 10, 600, 5000, False),  # enough, but not the share
    ],
)
def test_recompute_is_due_on_time_arrivals_or_crowded_outliers(
    seconds_since: float, arrived: int, outliers: int, total: int, due: bool
) -> None:
    cl = ClusteringSettings(
        recompute_every_s=600,
        recompute_every_n=5000,
        recompute_outlier_share=0.5,
        recompute_min_outliers=500,
    )
    got = recompute_due(
        cl, seconds_since=seconds_since, arrived=arrived, outliers=outliers, total=total
    )
    assert got is due


@pytest.mark.parametrize(
    ("arrived", "total", "due"),
    [
        (299, 299, False),  # a fresh store, not there yet
        (300, 300, True),  # there: clusters to join from now on
        (60, 320, True),  # restarted with 260 stored, there since
        (10, 310, False),  # recomputed at 300 already
        (10, 5000, False),  # past it long ago: the regular schedule
    ],
)
def test_a_young_store_is_recomputed_once_it_holds_recompute_first_after(
    arrived: int, total: int, due: bool
) -> None:
    cl = ClusteringSettings(recompute_first_after=300)
    got = recompute_due(cl, seconds_since=10.0, arrived=arrived, outliers=0, total=total)
    assert got is due


@pytest.mark.parametrize(
    ("arrived", "total", "due"),
    [
        (299, 599, False),  # recomputed at 300: not doubled yet
        (300, 600, True),  # doubled: chosen again on twice the evidence
        (1200, 2400, True),
        (2000, 6000, False),  # held 4,000 then: doubles until every_n, not beyond
        (5000, 10_000, True),  # the regular rule: every_n new
    ],
)
def test_a_young_store_is_recomputed_each_time_it_doubles(
    arrived: int, total: int, due: bool
) -> None:
    cl = ClusteringSettings(recompute_first_after=300, recompute_every_n=5000)
    got = recompute_due(cl, seconds_since=10.0, arrived=arrived, outliers=0, total=total)
    assert got is due


def test_scheduled_recomputes_take_at_most_their_share_of_the_time() -> None:
    cl = ClusteringSettings(recompute_every_s=600, recompute_max_time_share=0.25)
    # The last one took 300 s: the next waits 900 s, whatever else asks for it.
    for since, due in ((601.0, False), (899.0, False), (901.0, True)):
        got = recompute_due(
            cl, seconds_since=since, arrived=10, outliers=0, total=1000, last_took=300.0
        )
        assert got is due
    crowded = recompute_due(
        cl, seconds_since=100.0, arrived=900, outliers=900, total=1000, last_took=300.0
    )
    assert crowded is False


async def test_a_cluster_kept_under_the_fallback_name_is_named_again() -> None:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, AssignParams(0.8, 0.8, 3), min_size_shown=3)
    assigner.process(_items(80))
    points = store.list_clusters()
    renamed = [
        ClusterPoint(
            cluster_id=c.cluster_id,
            centroid=c.centroid,
            meta=c.meta.model_copy(update={"name": FALLBACK_NAME if i == 0 else "Kept by hand"}),
        )
        for i, c in enumerate(points)
    ]
    store.upsert_clusters(renamed)
    plan = await plan_recompute(
        store,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(k=4, top_level=2, min_size_shown=3),
    )
    assert plan is not None
    names = {c.id: c.name for c in plan.clusters if c.level == 0}
    assert names[points[0].cluster_id] not in (FALLBACK_NAME, "")
    assert all(names[c.cluster_id] == "Kept by hand" for c in points[1:])
