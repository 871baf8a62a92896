"""The one ReadAPI contract: FakeReadAPI and HttpReadAPI (over a real local server) both pass it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from kura_stream.service.api_models import ClusterView, ReadAPI
from tests.fakes.read_api import NOW, FakeReadAPI, ReadAPIServer, serve
from tui.http_api import HttpReadAPI, ServiceUnavailable


@dataclass
class Subject:
    """The API under test and the fake behind it (the same object for the in-memory case)."""

    api: ReadAPI
    fake: FakeReadAPI


@pytest.fixture
def fake() -> FakeReadAPI:
    return FakeReadAPI.seeded()


@pytest.fixture
def server(fake: FakeReadAPI) -> Iterator[ReadAPIServer]:
    with serve(fake) as running:
        yield running


@pytest.fixture(params=["fake", "http"])
async def subject(request: pytest.FixtureRequest, fake: FakeReadAPI) -> AsyncIterator[Subject]:
    if request.param == "fake":
        yield Subject(fake, fake)
        return
    server: ReadAPIServer = request.getfixturevalue("server")
    async with HttpReadAPI(server.url, timeout_s=2.0) as api:
        yield Subject(api, fake)


def _by_id(views: list[ClusterView]) -> dict[str, ClusterView]:
    return {v.id: v for v in views}


# --- the shared contract -------------------------------------------------------------------------
async def test_answers_equal_the_fakes_own(subject: Subject) -> None:
    # Over HTTP every field survives the round trip (datetimes, tuples, summaries).
    assert await subject.api.status() == await subject.fake.status()
    assert await subject.api.clusters() == await subject.fake.clusters()
    assert await subject.api.cluster("c-py") == await subject.fake.cluster("c-py")


async def test_status_counts_base_clusters_and_outliers(subject: Subject) -> None:
    status = await subject.api.status()
    views = await subject.api.clusters()
    base = [v for v in views if v.level == 0]
    assert status.clusters == len(base) == 8
    assert status.conversations == sum(v.count for v in base) + status.outliers
    assert (status.dlq, status.lag, status.outliers) == (3, 12, 310)
    assert status.broker_ok
    assert status.store_ok
    assert not status.recompute_running


async def test_clusters_form_a_hierarchy_with_meta_counts(subject: Subject) -> None:
    views = _by_id(await subject.api.clusters())
    metas = [v for v in views.values() if v.level > 0]
    assert {m.id for m in metas} == {"m-code", "m-write", "m-learn"}
    for meta in metas:
        kids = [v for v in views.values() if v.parent_id == meta.id]
        assert kids
        assert meta.count == sum(k.count for k in kids)
    for view in views.values():
        assert view.parent_id is None or view.parent_id in views
        assert view.history
        assert view.history[-1] == view.count
        assert view.created_at is not None


async def test_small_clusters_are_hidden(subject: Subject) -> None:
    tiny = _by_id(await subject.api.clusters())["c-tiny"]
    assert not tiny.visible
    assert tiny.name == ""
    assert tiny.description == ""
    detail = await subject.api.cluster("c-tiny")
    assert detail.sample == ()


async def test_cluster_detail_has_children_and_summaries(subject: Subject) -> None:
    meta = await subject.api.cluster("m-code")
    assert set(meta.children) == {"c-py", "c-sql", "c-rx"}
    base = await subject.api.cluster("c-py")
    assert base.cluster.name == "Debug Python import errors"
    assert base.children == ()
    assert 0 < len(base.sample) <= 20
    assert all(s.summary and s.chat_id.startswith("c-py") for s in base.sample)


async def test_unknown_ids_raise_key_error(subject: Subject) -> None:
    with pytest.raises(KeyError):
        await subject.api.cluster("no-such-cluster")
    with pytest.raises(KeyError):
        await subject.api.recompute_status("no-such-request")


async def test_ids_with_url_characters_round_trip(subject: Subject) -> None:
    subject.fake.add_cluster("a/b c?d", "Odd id", count=40, parent_id="m-code")
    detail = await subject.api.cluster("a/b c?d")
    assert detail.cluster.id == "a/b c?d"
    assert detail.cluster.count == 40


async def test_recompute_runs_to_completion(subject: Subject) -> None:
    queued = await subject.api.request_recompute()
    assert queued.state == "queued"
    assert queued.request_id
    assert (await subject.api.status()).recompute_running
    running = await subject.api.recompute_status(queued.request_id)
    assert running.state == "running"
    assert running.started_at is not None
    done = await subject.api.recompute_status(queued.request_id)
    assert done.state == "completed"
    assert done.clusters_after == 8
    assert done.finished_at is not None
    status = await subject.api.status()
    assert status.last_recompute_at == NOW
    assert not status.recompute_running


async def test_recompute_failure_is_reported(subject: Subject) -> None:
    subject.fake.fail_next_recompute = True
    subject.fake.recompute_steps = 1
    rc = await subject.api.request_recompute()
    failed = await subject.api.recompute_status(rc.request_id)
    assert failed.state == "failed"
    assert "store" in failed.detail


async def test_live_changes_are_seen(subject: Subject) -> None:
    subject.fake.grow("c-sql", 25)
    subject.fake.add_cluster("c-new", "Plan trips to Japan", count=30, parent_id="m-learn")
    subject.fake.move("c-py", 9.0, -9.0)
    views = _by_id(await subject.api.clusters())
    assert views["c-sql"].count == 985
    assert views["c-sql"].history[-1] == 985
    assert views["m-code"].count == 1840 + 985 + 412
    assert views["c-new"].created_at == NOW
    assert views["c-new"].visible
    assert (views["c-py"].x, views["c-py"].y) == (9.0, -9.0)
    assert (await subject.api.status()).clusters == 9


async def test_offline_raises_service_unavailable_then_recovers(subject: Subject) -> None:
    subject.fake.go_offline("store is down")
    for call in (
        subject.api.status(),
        subject.api.clusters(),
        subject.api.cluster("c-py"),
        subject.api.request_recompute(),
    ):
        with pytest.raises(ServiceUnavailable, match="store is down"):
            await call
    subject.fake.go_online()
    assert (await subject.api.status()).clusters == 8


# --- HTTP only: what the network adds ---------------------------------------------------------
async def test_http_server_gone_is_service_unavailable_and_reconnects(fake: FakeReadAPI) -> None:
    server = ReadAPIServer(fake).start()
    async with HttpReadAPI(server.url) as api:
        assert (await api.status()).clusters == 8
        server.stop()
        with pytest.raises(ServiceUnavailable):
            await api.status()
        server.start()  # same port
        try:
            assert (await api.status()).clusters == 8
        finally:
            server.stop()


async def test_http_timeout_is_service_unavailable(
    fake: FakeReadAPI, server: ReadAPIServer
) -> None:
    fake.delay_s = 0.5
    async with HttpReadAPI(server.url, timeout_s=0.1) as api:
        with pytest.raises(ServiceUnavailable, match="timed out"):
            await api.status()


async def test_http_nothing_listening_is_service_unavailable() -> None:
    async with HttpReadAPI("http://127.0.0.1:9", connect_timeout_s=0.5) as api:
        with pytest.raises(ServiceUnavailable):
            await api.clusters()


async def test_http_unexpected_answers_are_service_unavailable() -> None:
    answers = {
        "/status": httpx.Response(200, json={"conversations": "many"}),
        "/clusters": httpx.Response(200, text="<html>proxy error</html>"),
        "/recompute": httpx.Response(500, json={"detail": "boom"}),
    }

    def reply(request: httpx.Request) -> httpx.Response:
        return answers[request.url.path]

    api = HttpReadAPI("http://service")
    api._client = httpx.AsyncClient(base_url=api.base_url, transport=httpx.MockTransport(reply))
    async with api:
        with pytest.raises(ServiceUnavailable, match="unexpected answer"):
            await api.status()
        with pytest.raises(ServiceUnavailable, match="not JSON"):
            await api.clusters()
        with pytest.raises(ServiceUnavailable, match="HTTP 500 boom"):
            await api.request_recompute()


async def test_http_answers_concurrently(server: ReadAPIServer) -> None:
    async with HttpReadAPI(server.url) as api:
        answers = await asyncio.gather(*(api.clusters() for _ in range(8)))
    assert all(len(a) == len(answers[0]) == 11 for a in answers)
