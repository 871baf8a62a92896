"""Names-only LLM mode: offline names at once, LLM names in the background, failures contained."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from kura_stream.adapters.llm.calls import RetryPolicy
from kura_stream.adapters.llm.namers import LLMClusterNamer
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint
from kura_stream.service.naming import (
    NAMER_KEY,
    clusters_to_name,
    name_due_clusters,
    naming_due,
)
from kura_stream.service.recompute import RecomputeParams, apply_recompute, plan_recompute
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import ClusterEvent, ClusterEventKind, Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.memory_store import MemoryClusterStore
from tests.fakes.openai_server import FakeOpenAIServer, running, tool
from tests.unit.test_summarise import client_for

DIM = 16
TOPICS = ("debug a python import error", "write a birthday poem", "plan a mountain trip")
FAST = RetryPolicy(validation_retries=1, attempts=2, base_delay_s=0.01)
LLM_LABEL = {
    "summary": "Users asked for help with a Python import error.",
    "name": "Fix Python import errors",
    "slug": "python_import_errors",
}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running() as srv:
        yield srv


def llm_namer(srv: FakeOpenAIServer) -> LLMClusterNamer:
    return LLMClusterNamer(client_for(srv), model="fake-model", retry=FAST)


def seeded_store(sizes: Sequence[int] = (10, 10, 10), seed: int = 0) -> MemoryClusterStore:
    """Base clusters c0, c1, ... as the stream leaves them: counted, placed, not yet named."""
    rng = np.random.default_rng(seed)
    store = MemoryClusterStore(DIM)
    for t, size in enumerate(sizes):
        mean = rng.normal(size=DIM)
        mean /= np.linalg.norm(mean)
        points = []
        for i in range(size):
            chat_id = f"t{t}-{i}"
            summary = Summary(chat_id=chat_id, summary=f"The user asks to {TOPICS[t % 3]}.")
            vector = mean + rng.normal(scale=0.03, size=DIM)
            payload = {"summary": summary.model_dump(mode="json")}
            points.append(ConversationPoint(chat_id, vector.astype(np.float32), f"c{t}", payload))
        store.upsert_conversations(points)
        meta = ClusterMeta(count=size, level=0, named_count=0, announced_count=size)
        store.upsert_clusters([ClusterPoint(f"c{t}", mean.astype(np.float32), meta)])
    return store


class Published:
    """Collects what the name consumer would publish, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[ClusterEvent]] = []

    async def __call__(self, events: list[ClusterEvent]) -> None:
        self.batches.append(events)


def created(*ids: str) -> list[ClusterEvent]:
    return [ClusterEvent(kind=ClusterEventKind.CREATED, cluster_id=c, count=10) for c in ids]


def stored_meta(store: MemoryClusterStore, cluster_id: str) -> ClusterMeta:
    return store.get_clusters([cluster_id])[0].meta


def with_(meta: ClusterMeta, **update: object) -> ClusterMeta:
    return meta.model_copy(update=update)


async def name_batch(
    store: MemoryClusterStore, ids: list[str], background: LLMClusterNamer | None
) -> Published:
    published = Published()
    await name_due_clusters(
        store,
        ids,
        namer=OfflineClusterNamer(),
        background_namer=background,
        min_size_shown=5,
        write_lock=asyncio.Lock(),
        publish=published,
    )
    return published


def test_naming_due_upgrades_offline_names_once_and_waits_after_a_failure() -> None:
    base = ClusterMeta(count=10, named_count=10, name="Offline name", namer="offline")
    assert naming_due(ClusterMeta(count=10), min_size_shown=5)
    assert not naming_due(ClusterMeta(count=4), min_size_shown=5, kind="llm")
    assert not naming_due(base, min_size_shown=5)  # offline: only once it has doubled
    assert naming_due(base, min_size_shown=5, kind="llm")  # the LLM upgrades an offline name
    assert naming_due(with_(base, namer=None), min_size_shown=5, kind="llm")
    assert not naming_due(base, min_size_shown=5, kind="llm", only_unnamed=True)
    for who in ("llm", "manual"):
        assert not naming_due(with_(base, namer=who), min_size_shown=5, kind="llm")
        assert naming_due(with_(base, namer=who, count=20), min_size_shown=5, kind="llm")
    failed = with_(base, naming_failed_count=10, count=19)
    assert not naming_due(failed, min_size_shown=5, kind="llm")  # no retry loop at this size
    assert naming_due(with_(failed, count=20), min_size_shown=5, kind="llm")


def test_clusters_to_name_follows_a_recompute_only_in_llm_mode() -> None:
    events = [
        ClusterEvent(kind=ClusterEventKind.CREATED, cluster_id="a", request_id="r"),
        ClusterEvent(kind=ClusterEventKind.RENAMED, cluster_id="b", request_id="r"),
        ClusterEvent(kind=ClusterEventKind.SPLIT, cluster_id="c", related=("d",), request_id="r"),
        ClusterEvent(kind=ClusterEventKind.RENAMED, cluster_id="e"),  # the consumer's own
        ClusterEvent(kind=ClusterEventKind.GROWN, cluster_id="a"),
        ClusterEvent(kind=ClusterEventKind.MAP_UPDATED, request_id="r"),
    ]
    assert clusters_to_name(events, after_recompute=False) == ["a"]
    assert clusters_to_name(events, after_recompute=True) == ["a", "b", "c", "d"]


async def test_offline_name_first_then_the_llm_name_with_a_renamed_event(
    server: FakeOpenAIServer,
) -> None:
    store = seeded_store()
    server.script(*(tool(LLM_LABEL) for _ in range(3)))
    published = await name_batch(store, ["c0", "c1", "c2"], llm_namer(server))
    first, *llm = published.batches
    # The offline names go out at once, in one batch, before any LLM call returns.
    assert [e.cluster_id for e in first] == ["c0", "c1", "c2"]
    assert all(
        e.kind == ClusterEventKind.RENAMED and e.detail == {NAMER_KEY: "offline"} for e in first
    )
    assert all(e.name and e.name != LLM_LABEL["name"] for e in first)
    # Then one renamed event per LLM name, as each lands.
    assert [len(b) for b in llm] == [1, 1, 1]
    assert {b[0].cluster_id for b in llm} == {"c0", "c1", "c2"}
    assert all(b[0].name == LLM_LABEL["name"] and b[0].detail == {NAMER_KEY: "llm"} for b in llm)
    assert len(server.chat_requests) == 3
    stored = stored_meta(store, "c0")
    assert stored.name == LLM_LABEL["name"]
    assert stored.namer == "llm"
    assert stored.named_count == 10
    # Another event for the same clusters (not doubled): no second LLM call.
    again = await name_batch(store, ["c0", "c1", "c2"], llm_namer(server))
    assert again.batches == []
    assert len(server.chat_requests) == 3


async def test_failing_llm_leaves_the_offline_name_and_is_not_retried_in_a_loop(
    server: FakeOpenAIServer,
) -> None:
    store = seeded_store(sizes=(10,))
    # Nothing scripted: the fake server answers every request with HTTP 500.
    published = await name_batch(store, ["c0"], llm_namer(server))
    assert len(published.batches) == 1  # the offline name only
    offline_name = published.batches[0][0].name
    stored = stored_meta(store, "c0")
    assert stored.name == offline_name
    assert stored.namer == "offline"
    assert stored.naming_failed_count == 10
    calls = len(server.chat_requests)
    assert calls >= 1
    again = await name_batch(store, ["c0"], llm_namer(server))
    assert again.batches == []
    assert len(server.chat_requests) == calls


async def test_without_a_background_namer_the_namer_alone_names_as_before() -> None:
    store = seeded_store(sizes=(10, 3))
    published = await name_batch(store, ["c0", "c1"], None)
    assert [[e.cluster_id for e in b] for b in published.batches] == [["c0"]]  # c1: too small
    assert stored_meta(store, "c0").namer == "offline"
    assert not stored_meta(store, "c1").name


async def test_recompute_names_offline_and_keeps_an_llm_name_that_landed_meanwhile() -> None:
    store = seeded_store()
    named = {"name": "LLM name", "description": "d", "slug": "s", "namer": "llm"}
    c0 = store.get_clusters(["c0"])[0]
    store.upsert_clusters(
        [ClusterPoint("c0", c0.centroid, with_(c0.meta, **named, named_count=10))]
    )
    plan = await plan_recompute(
        store,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=HashEmbedder(dim=32).embed,
        params=RecomputeParams(k=3, top_level=2, min_size_shown=5),
        request_id="r1",
    )
    assert plan is not None
    assert plan.named == {"c1", "c2"}
    assert plan.namer == "offline"
    # The recompute's events call for LLM names for the clusters it named, not for c0.
    assert sorted(clusters_to_name(plan.events, after_recompute=True)) == ["c1", "c2"]
    # An LLM name lands for c1 while the recompute runs: applying it must not undo that.
    c1 = store.get_clusters(["c1"])[0]
    store.upsert_clusters([ClusterPoint("c1", c1.centroid, with_(c1.meta, **named))])
    apply_recompute(store, plan)
    assert stored_meta(store, "c0").name == "LLM name"
    assert stored_meta(store, "c0").namer == "llm"
    assert stored_meta(store, "c1").name == "LLM name"
    assert stored_meta(store, "c1").namer == "llm"
    c2 = stored_meta(store, "c2")
    plan_names = {c.id: c.name for c in plan.clusters}
    assert c2.name == plan_names["c2"]
    assert c2.namer == "offline"
    assert c2.named_count == 10


def test_names_llm_mode_keeps_summaries_offline_and_adds_a_background_llm_namer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kura_stream.bootstrap import build_insight
    from kura_stream.settings import Settings
    from kura_stream.stages.offline_summary import OfflineSummariser

    monkeypatch.delenv("KURA_SERVICE_NAMES", raising=False)
    assert Settings().service.names == "offline"
    monkeypatch.setenv("KURA_SERVICE_NAMES", "llm")
    settings = Settings()
    assert settings.service.names == "llm"
    insight = build_insight(settings, offline=True, embedder=HashEmbedder(dim=DIM))
    assert isinstance(insight.summariser, OfflineSummariser)
    assert isinstance(insight.namer, OfflineClusterNamer)
    assert isinstance(insight.background_namer, LLMClusterNamer)
    monkeypatch.setenv("KURA_SERVICE_NAMES", "offline")
    offline = build_insight(Settings(), offline=True, embedder=HashEmbedder(dim=DIM))
    assert offline.background_namer is None


def test_serve_refuses_an_unknown_names_mode() -> None:
    from typer.testing import CliRunner

    from kura_stream.cli import app

    result = CliRunner().invoke(app, ["serve", "--offline", "--names", "gpt"])
    assert result.exit_code == 2
    assert "offline or llm" in result.output
