"""Checkpoints round-trip in JSONL and Parquet, and are never reused for other input."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

import kura_stream.checkpoints.store as checkpoints_module
from kura_stream.checkpoints import CheckpointStore, Format, input_key
from kura_stream.types import Cluster, EmbeddedConversation, Summary

FORMATS: list[Format] = ["jsonl", "parquet"]
T0 = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def summaries() -> list[Summary]:
    return [
        Summary(
            chat_id="a",
            summary="The user asked for help.",
            request="help",
            languages=("english", "python"),
            concerning_score=2,
            user_frustration=None,
            assistant_errors=("too long",),
            facets={"key_phrases": ["x", "y"], "nested": {"n": 1, "ok": True}, "score": 0.5},
            metadata={"turns": 3, "tags": ["a", "b"], "flag": False, "none": None},
            summariser="offline:v1",
        ),
        Summary(chat_id="b", summary="Other.", summariser="offline:v1"),
    ]


def clusters() -> list[Cluster]:
    return [
        Cluster(id="c1", name="Debug code", count=12, x=0.25, y=-1.5),
        Cluster(id="c2", name="Plan trips", count=3, parent_id="p", level=1, x=1, y=2),
    ]


@pytest.fixture(params=FORMATS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "ckpt", format=request.param)


def test_round_trip_summaries(store: CheckpointStore) -> None:
    key = input_key(records=summaries(), params={"k": 3}, models=["m"])
    path = store.save("summaries", key, summaries())
    assert path.suffix == f".{store.format}"
    assert store.load("summaries", key, Summary) == summaries()


def test_round_trip_clusters_and_vectors(store: CheckpointStore) -> None:
    store.save("clusters", "k1", clusters())
    assert store.load("clusters", "k1", Cluster) == clusters()
    embedded = [
        EmbeddedConversation(
            chat_id="a",
            summary=summaries()[0],
            vector=(0.5, -0.25, 1.0),
            embedder="fake",
            created_at=T0,
            received_at=T0,
        )
    ]
    store.save("embedded", "k2", embedded)
    assert store.load("embedded", "k2", EmbeddedConversation) == embedded


def test_empty_output_is_a_hit_not_a_miss(store: CheckpointStore) -> None:
    store.save("summaries", "k", [])
    assert store.load("summaries", "k", Summary) == []


def test_other_input_is_a_logged_miss(
    store: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    old = input_key(records=summaries()[:1])
    store.save("summaries", old, summaries()[:1])
    new = input_key(records=summaries())
    with caplog.at_level(logging.INFO, logger="kura_stream.checkpoints"):
        assert store.load("summaries", new, Summary) is None
    assert "other input" in caplog.text
    assert store.load("summaries", old, Cluster) is None  # another record type
    assert store.load("missing", old, Summary) is None


def test_schema_version_change_is_a_miss(
    store: CheckpointStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("summaries", "k", summaries())
    monkeypatch.setattr(checkpoints_module, "SCHEMA_VERSION", 99)
    assert store.load("summaries", "k", Summary) is None


def test_corrupt_or_truncated_files_are_misses(store: CheckpointStore) -> None:
    path = store.save("summaries", "k", summaries())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert store.load("summaries", "k", Summary) is None
    path.write_bytes(b"")
    assert store.load("summaries", "k", Summary) is None


def test_jsonl_with_a_lost_line_is_a_miss(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, format="jsonl")
    path = store.save("summaries", "k", summaries())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    assert store.load("summaries", "k", Summary) is None


def test_writes_are_atomic(store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save("summaries", "old", summaries())

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("kura_stream.checkpoints.store.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        store.save("summaries", "new", summaries()[:1])
    assert store.load("summaries", "old", Summary) == summaries()  # the old one is intact
    assert [p.name for p in store.directory.iterdir()] == [f"summaries.{store.format}"]


def test_input_key_covers_content_params_and_models() -> None:
    base = input_key(records=summaries(), params={"k": 3}, models=["m"])
    assert base == input_key(records=summaries(), params={"k": 3}, models=["m"])
    changed = [summaries()[0].model_copy(update={"summary": "edited"}), summaries()[1]]
    assert base != input_key(records=changed, params={"k": 3}, models=["m"])
    assert base != input_key(records=summaries()[::-1], params={"k": 3}, models=["m"])
    assert base != input_key(records=summaries(), params={"k": 4}, models=["m"])
    assert base != input_key(records=summaries(), params={"k": 3}, models=["m2"])


def test_bad_names_and_mixed_records(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(ValueError, match="safe file name"):
        store.save("../escape", "k", [])
    with pytest.raises(ValueError, match="several types"):
        store.save("mixed", "k", [*summaries(), *clusters()])
    with pytest.raises(ValueError, match="format"):
        CheckpointStore(tmp_path, format="csv")  # type: ignore[arg-type]
