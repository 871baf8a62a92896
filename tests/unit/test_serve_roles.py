"""`serve --role`: which consumers each role runs, clear refusals, an ingest worker's build."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker
from starlette.testclient import TestClient
from typer.testing import CliRunner

from consumers.http_api import make_ops_app
from consumers.roles import PARTS, RoleError, opens_store, parts_for
from consumers.serve import include
from kura_stream import bootstrap
from kura_stream.bootstrap import build_ingest, build_insight
from kura_stream.cli import app
from kura_stream.service.stream import IngestService
from kura_stream.settings import Settings, StoreSettings
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.no_outputs import NoOutputs


@pytest.mark.parametrize(
    ("role", "parts"),
    [
        (None, PARTS),
        ("all", PARTS),
        ("ingest", ("summarise",)),
        ("assign", ("assign", "name", "commands")),
        (" Assign ", ("assign", "name", "commands")),
    ],
)
def test_each_role_runs_its_consumers(role: str | None, parts: tuple[str, ...]) -> None:
    assert parts_for(role) == parts


def test_only_an_ingest_worker_leaves_the_store_closed() -> None:
    assert not opens_store(parts_for("ingest"))
    assert opens_store(parts_for("assign"))
    assert opens_store(parts_for("all"))


def test_parts_still_choose_consumers_in_their_order() -> None:
    assert parts_for(None, "commands, summarise") == ("summarise", "commands")
    assert parts_for("all", "assign") == ("assign",)


@pytest.mark.parametrize(
    ("role", "parts", "message"),
    [
        ("ingester", None, "unknown role 'ingester'; choose from ingest, assign, all"),
        ("recompute", None, "runs in the assign process"),
        ("ingest", "assign", "give --role or --parts, not both"),
        (None, "summarise,embed", "unknown parts ['embed']"),
        (None, " , ", "no parts to run"),
    ],
)
def test_bad_roles_and_parts_are_refused_clearly(
    role: str | None, parts: str | None, message: str
) -> None:
    with pytest.raises(RoleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parts_for(role, parts)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "everything"], "unknown role"),
        (["--role", "recompute"], "assign process"),
        (["--port", "-1"], "--port"),
    ],
)
def test_serve_refuses_a_bad_role_before_starting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--offline", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())  # rich wraps the error box


def test_an_ingest_worker_is_built_without_opening_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_store(*_: object) -> None:
        raise AssertionError("an ingest worker must not open the store")

    monkeypatch.setattr(bootstrap, "build_store", no_store)
    settings = Settings(store=StoreSettings(path=tmp_path / "store"), cache_dir=tmp_path)
    insight = build_insight(settings, offline=True, embedder=HashEmbedder(dim=16))
    worker = build_ingest(settings, NoOutputs(), offline=True, insight=insight)
    assert set(worker.context()) == {"ingestor", "metrics", "outputs"}
    assert not (tmp_path / "store").exists()

    with pytest.raises(RoleError, match="summarise consumer only"):
        include(KafkaBroker(), worker, ["summarise", "assign"])
    worker.close()


def test_an_ingest_worker_serves_health_and_metrics_only(tmp_path: Path) -> None:
    settings = Settings(store=StoreSettings(path=tmp_path / "store"), cache_dir=tmp_path)
    insight = build_insight(settings, offline=True, embedder=HashEmbedder(dim=16))
    worker: IngestService = build_ingest(settings, NoOutputs(), offline=True, insight=insight)
    worker.metrics.ingested.inc(3)
    client = TestClient(make_ops_app(worker))
    health = client.get("/health")
    assert (health.status_code, health.json()["store"]) == (200, None)
    assert "kura_ingested_total 3.0" in client.get("/metrics").text
    assert client.get("/status").status_code == 404
    worker.metrics.broker_ok = False
    assert client.get("/health").status_code == 503


def test_serve_says_how_to_scale_when_the_embedded_store_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import consumers.serve
    from kura_stream.adapters.stores import StoreLockedError

    async def held(*_: object, **__: object) -> None:
        raise StoreLockedError("the embedded store at /x is already open in process 7")

    monkeypatch.setattr(consumers.serve, "serve", held)
    result = CliRunner().invoke(app, ["serve", "--offline", "--role", "assign"])
    assert result.exit_code == 3
    assert "process 7" in result.output
    assert "--role ingest" in result.output
