"""Export: our files round-trip, exact field sets, and Kura's web UI files in Kura's shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from kura_stream.export import CLUSTER_FIELDS, export_batch, read_assignments, read_clusters
from kura_stream.types import Assignment, Cluster, Conversation, Message, Summary

WHEN = datetime(2024, 5, 1, 12, tzinfo=UTC)

# Kura 0.5's pydantic shapes (kura/types), copied field for field; extra="forbid" so that a
# field we write and Kura does not know (or a renamed one) fails here.
KuraMetadata = dict[str, str | int | float | bool | list[str] | list[int] | list[float]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KuraMessage(_Strict):
    created_at: datetime
    role: Literal["user", "assistant"]
    content: str


class KuraConversation(_Strict):
    chat_id: str
    created_at: datetime
    messages: list[KuraMessage]
    metadata: KuraMetadata


class KuraConversationSummary(_Strict):
    summary: str
    request: str | None = None
    topic: str | None = None
    languages: list[str] | None = None
    task: str | None = None
    concerning_score: int | None = None
    user_frustration: int | None = None
    assistant_errors: list[str] | None = None
    chat_id: str
    metadata: dict[str, Any]
    embedding: list[float] | None = None


class KuraCluster(_Strict):
    id: str
    name: str
    description: str
    slug: str
    chat_ids: list[str]
    parent_id: str | None
    count: int  # a computed field in Kura: written, and equal to len(chat_ids)


class KuraProjectedCluster(KuraCluster):
    x_coord: float
    y_coord: float
    level: int


# What Kura's web UI (its zod schemas) requires of each file.
UI_CONVERSATION_KEYS = {"chat_id", "created_at", "messages", "metadata"}
UI_SUMMARY_KEYS = {"chat_id", "summary", "metadata"}
UI_CLUSTER_KEYS = {
    "id", "name", "description", "chat_ids", "parent_id", "x_coord", "y_coord", "level", "count"
}  # fmt: skip


def clusters() -> list[Cluster]:
    return [
        Cluster(id="top", name="Write software", description="Code.", slug="write_software",
                count=9, level=2, x=0.5, y=-1.0),
        Cluster(id="meta", name="Debug Python", description="Bugs.", count=7, parent_id="top",
                level=1, x=1.0, y=2.0),
        Cluster(id="b1", name="Fix import errors", description="Imports.", slug="fix_imports",
                count=4, parent_id="meta", x=1.5, y=2.5),
        Cluster(id="b2", name="Fix type errors", description="Types.", slug="fix_types",
                count=3, parent_id="meta", x=0.9, y=1.8),
        Cluster(id="b3", name="Write SQL joins", description="SQL.", slug="sql_joins",
                count=2, parent_id="top", x=-2.0, y=0.0),
    ]  # fmt: skip


def assignments() -> list[Assignment]:
    base = {"b1": ["c1", "c2", "c3", "c4"], "b2": ["c5", "c6", "c7"], "b3": ["c8", "c9"]}
    out = [
        Assignment(chat_id=c, cluster_id=k, similarity=0.8) for k, ids in base.items() for c in ids
    ]
    out.insert(0, Assignment(chat_id="c9", cluster_id="b1", similarity=0.5))  # later moved
    out.append(Assignment(chat_id="c10", cluster_id=None, similarity=0.1))  # an outlier
    return out


def conversation(chat_id: str, text: str = "How do I fix this?", **meta: Any) -> Conversation:
    return Conversation(
        chat_id=chat_id,
        created_at=WHEN,
        messages=(
            Message(created_at=WHEN, role="user", content=text),
            Message(created_at=WHEN, role="assistant", content="Try this."),
        ),
        metadata=meta,
    )


def summary(chat_id: str, text: str = "The user asked to fix an import error.") -> Summary:
    return Summary(
        chat_id=chat_id,
        summary=text,
        request="Fix an import error",
        task="debugging",
        topic="software",
        languages=("english", "python"),
        concerning_score=1,
        metadata={"lang": "en", "gone": None},
        summariser="offline:1",
    )


def export(tmp_path: Path, min_size_shown: int = 1, **kwargs: Any) -> Path:
    out = tmp_path / "out"
    args: dict[str, Any] = {
        "clusters": clusters(),
        "assignments": assignments(),
        "summaries": [summary(f"c{i}") for i in range(1, 11)],
        "conversations": [conversation(f"c{i}", source="t", gone=None) for i in range(1, 11)],
        "min_size_shown": min_size_shown,
    }
    args.update(kwargs)
    export_batch(out, **args)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_clusters_round_trip(tmp_path: Path) -> None:
    out = export(tmp_path)
    back = read_clusters(out)
    assert sorted(back, key=lambda c: c.id) == sorted(clusters(), key=lambda c: c.id)
    assert [c.id for c in back] == ["top", "meta", "b1", "b2", "b3"]  # depth-first, largest first
    assert read_clusters(out / "clusters.json") == back


def test_clusters_json_has_exactly_the_fields(tmp_path: Path) -> None:
    data = json.loads((export(tmp_path) / "clusters.json").read_text())
    assert isinstance(data, list)
    for obj in data:
        assert tuple(obj) == CLUSTER_FIELDS
    assert set(CLUSTER_FIELDS) == {
        "id", "name", "description", "count", "parent_id", "level", "x", "y", "slug"
    }  # fmt: skip


def test_assignments_latest_wins_and_outliers_kept(tmp_path: Path) -> None:
    out = export(tmp_path)
    rows = read_jsonl(out / "assignments.jsonl")
    assert all(set(r) == {"chat_id", "cluster_id"} for r in rows)
    back = read_assignments(out)
    assert back["c9"] == "b3"
    assert back["c10"] is None
    assert len(back) == 10
    again = export(tmp_path / "m", assignments=back)  # a chat_id -> cluster_id mapping works too
    assert read_assignments(again) == back


def test_summaries_jsonl_round_trips(tmp_path: Path) -> None:
    out = export(tmp_path)
    back = [Summary.model_validate_json(line) for line in (out / "summaries.jsonl").open()]
    assert back == [summary(f"c{i}") for i in range(1, 11)]


def test_kura_ui_files_have_kura_shapes(tmp_path: Path) -> None:
    kura = export(tmp_path) / "kura"
    assert {p.name for p in kura.iterdir()} == {
        "conversations.json", "summaries.jsonl", "clusters.jsonl", "meta_clusters.jsonl",
        "dimensionality.jsonl",
    }  # fmt: skip

    convs = json.loads((kura / "conversations.json").read_text())  # Kura's dump: a JSON list
    assert [KuraConversation.model_validate(c).chat_id for c in convs] == [
        f"c{i}" for i in range(1, 11)
    ]
    for c in convs:
        assert set(c) == UI_CONVERSATION_KEYS
        assert None not in c["metadata"].values()  # the UI refuses null metadata values

    for s in read_jsonl(kura / "summaries.jsonl"):
        KuraConversationSummary.model_validate(s)
        assert set(s) >= UI_SUMMARY_KEYS
        assert s["metadata"] == {"lang": "en"}

    projected = [
        KuraProjectedCluster.model_validate(c) for c in read_jsonl(kura / "dimensionality.jsonl")
    ]
    for raw in read_jsonl(kura / "dimensionality.jsonl"):
        assert set(raw) >= UI_CLUSTER_KEYS
    by_id = {c.id: c for c in projected}
    # Kura counts levels from the root; ours count from the base.
    assert {k: c.level for k, c in by_id.items()} == {
        "top": 0,
        "meta": 1,
        "b1": 2,
        "b2": 2,
        "b3": 1,
    }
    assert by_id["b1"].chat_ids == ["c1", "c2", "c3", "c4"]
    assert sorted(by_id["b3"].chat_ids) == ["c8", "c9"]
    assert sorted(by_id["meta"].chat_ids) == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    assert sorted(by_id["top"].chat_ids) == [f"c{i}" for i in range(1, 10)]
    assert all(c.count == len(c.chat_ids) for c in projected)
    assert (by_id["top"].x_coord, by_id["top"].y_coord, by_id["top"].parent_id) == (0.5, -1.0, None)
    assert by_id["meta"].slug == "debug_python"  # derived when a cluster has no slug

    base = [KuraCluster.model_validate(c) for c in read_jsonl(kura / "clusters.jsonl")]
    assert sorted(c.id for c in base) == ["b1", "b2", "b3"]
    meta = [KuraCluster.model_validate(c) for c in read_jsonl(kura / "meta_clusters.jsonl")]
    assert {c.id for c in meta} == set(by_id)


def test_small_clusters_hidden_everywhere(tmp_path: Path) -> None:
    out = export(tmp_path, min_size_shown=4)
    names = {c.id: (c.name, c.description) for c in read_clusters(out)}
    assert names["b2"] == ("(small cluster: 3 conversations, name hidden)", "")
    assert names["b3"] == ("(small cluster: 2 conversations, name hidden)", "")
    assert names["b1"] == ("Fix import errors", "Imports.")
    kura_text = (out / "kura" / "dimensionality.jsonl").read_text()
    assert "Fix type errors" not in kura_text
    assert "Write SQL joins" not in kura_text
    assert "Types." not in kura_text


def test_text_scrubbed_unless_asked_not_to(tmp_path: Path) -> None:
    convs = [conversation("c1", "mail me at jo@example.com", phone="+44 20 7946 0958")]
    sums = [summary("c1", "The user shared jo@example.com to get help.")]
    out = export(tmp_path, conversations=convs, summaries=sums)
    for name in ("kura/conversations.json", "kura/summaries.jsonl", "summaries.jsonl"):
        text = (out / name).read_text()
        assert "jo@example.com" not in text, name
        assert "[EMAIL]" in text, name
    assert "[PHONE]" in (out / "kura/conversations.json").read_text()
    raw = export(tmp_path / "raw", conversations=convs, summaries=sums, scrub_text=False)
    assert "jo@example.com" in (raw / "kura/conversations.json").read_text()


def test_export_replaces_files_and_leaves_no_temp_files(tmp_path: Path) -> None:
    out = export(tmp_path)
    export(tmp_path, clusters=clusters()[:1], assignments={}, summaries=[], conversations=[])
    assert [c.id for c in read_clusters(out)] == ["top"]
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    assert json.loads((out / "kura/conversations.json").read_text()) == []


def test_read_clusters_rejects_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps([{"id": "a", "name": "n", "count": -1}]))
    with pytest.raises(ValueError, match="count"):
        read_clusters(path)
