"""The HTTP API's web map routes and its answers to bad input: clear 4xx, never a 500."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from consumers.http_api import D3_PATH, make_http_app
from kura_stream.bootstrap import build_insight, build_stream
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint
from kura_stream.service.stream import StreamService
from kura_stream.settings import Settings, StoreSettings
from kura_stream.types import Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.memory_store import MemoryClusterStore
from tests.fakes.no_outputs import NoOutputs

DIM = 16


def _seed(store: MemoryClusterStore) -> None:
    vec = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    store.upsert_clusters(
        [
            ClusterPoint("top", vec, ClusterMeta(name="Coding help", count=30, level=1)),
            ClusterPoint("c-py", vec, ClusterMeta(name="Fix Python", count=25, parent_id="top")),
            ClusterPoint("c-tiny", vec, ClusterMeta(name="Secret", count=2, parent_id="top")),
        ]
    )
    store.upsert_conversations(
        [
            ConversationPoint(
                f"chat-{i}",
                vec,
                "c-py",
                {"summary": Summary(chat_id=f"chat-{i}", summary=f"fix {i}").model_dump()},
            )
            for i in range(12)
        ]
    )


@pytest.fixture
def service(tmp_path: Path) -> StreamService:
    settings = Settings(store=StoreSettings(path=tmp_path / "store"), cache_dir=tmp_path / "cache")
    insight = build_insight(settings, offline=True, embedder=HashEmbedder(dim=DIM))
    built = build_stream(settings, NoOutputs(), offline=True, insight=insight)
    built.store.close()
    store = MemoryClusterStore(DIM)
    _seed(store)
    return dataclasses.replace(built, store=store)


@pytest.fixture
def client(service: StreamService) -> TestClient:
    # As in serve with the commands consumer: the request becomes a command (here: dropped).
    return TestClient(make_http_app(service, launch=service.recomputer.request))


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<svg id="map"' in page.text
    for name in ("app.js", "map.js", "panels.js", "format.js", "style.css"):
        answer = client.get(f"/web/{name}")
        assert answer.status_code == 200, name
        # Nothing is fetched from elsewhere: the page works with no internet.
        assert "https://" not in answer.text, name
    assert 'src="http' not in page.text
    assert 'href="http' not in page.text


def test_the_library_comes_from_the_cache_or_a_clear_404(
    client: TestClient, service: StreamService
) -> None:
    missing = client.get("/web/vendor/d3.min.js")
    assert missing.status_code == 404
    assert "scripts/web_deps.sh" in missing.text
    d3 = service.settings.cache_dir / D3_PATH
    d3.parent.mkdir(parents=True)
    d3.write_text("window.d3 = {};")
    found = client.get("/web/vendor/d3.min.js")
    assert found.status_code == 200
    assert "javascript" in found.headers["content-type"]


def test_sample_sets_how_many_summaries(client: TestClient) -> None:
    assert len(client.get("/clusters/c-py").json()["sample"]) == 5
    assert len(client.get("/clusters/c-py?sample=10").json()["sample"]) == 10
    assert len(client.get("/clusters/top?sample=3").json()["sample"]) == 3
    tiny = client.get("/clusters/c-tiny?sample=10").json()
    assert tiny["cluster"]["visible"] is False
    assert tiny["cluster"]["name"] == ""
    assert tiny["sample"] == []


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/clusters/nope", 404, "unknown cluster 'nope'"),
        ("/clusters/%F0%9F%92%A5%00x", 404, "unknown cluster"),
        ("/clusters/" + "x" * 5000, 404, "unknown cluster"),
        ("/recompute/nope", 404, "unknown recompute request"),
        ("/clusters/c-py?sample=0", 400, "sample must be an integer from 1 to 20"),
        ("/clusters/c-py?sample=21", 400, "sample must be an integer from 1 to 20"),
        ("/clusters/c-py?sample=abc", 400, "sample must be an integer"),
        ("/clusters/c-py?sample=-1", 400, "sample must be an integer"),
        ("/clusters/c-py?sample=%D9%A3", 400, "sample must be an integer"),  # Arabic-Indic 3
        ("/clusters/c-py?sample=1&sample=2", 400, "given 2 times"),
        ("/clusters/c-py?limit=3", 400, "unknown query parameter(s) ['limit']"),
        ("/clusters?sort=size", 400, "this route reads: none"),
        ("/status?x", 400, "unknown query parameter"),
        ("/recompute/nope?x=1", 400, "unknown query parameter"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(
    client: TestClient, path: str, status: int, says: str
) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]


def test_commands_are_refused_from_another_sites_page(client: TestClient) -> None:
    other = {"origin": "https://evil.example"}
    assert client.post("/recompute", headers=other).status_code == 403
    assert client.post("/export", headers=other, json={"dir": "x"}).status_code == 403
    same = {"origin": "http://testserver"}  # the page's own origin, as a browser sends it
    queued = client.post("/recompute", headers=same)
    assert queued.status_code == 200
    assert queued.json()["state"] == "queued"
    assert client.post("/recompute").json()["state"] == "queued"  # the CLI sends no Origin
