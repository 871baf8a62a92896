"""Kura UI files: failed summaries left out and reported, stored messages bounded and exported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kura_stream.export import export_batch, read_report
from kura_stream.kura_ui_files import (
    PLACEHOLDER_SUMMARY,
    STORED_MESSAGE_CHARS,
    bound_messages,
    stored_messages,
)
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint
from kura_stream.service.assigner import conversation_payload
from kura_stream.service.export_store import export_store
from kura_stream.settings import Settings
from kura_stream.types import Conversation, EmbeddedConversation, Message, Summary
from tests.fakes.memory_store import MemoryClusterStore
from tests.unit.test_export import assignments, clusters, conversation, read_jsonl, summary

WHEN = datetime(2024, 5, 1, 12, tzinfo=UTC)


def ui_view(kura: Path) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
    """What Kura's App.tsx builds: conversations by id, summaries by id, and the clusters."""
    convs = {c["chat_id"]: c for c in json.loads((kura / "conversations.json").read_text())}
    sums = {s["chat_id"]: s["summary"] for s in read_jsonl(kura / "summaries.jsonl")}
    return convs, sums, read_jsonl(kura / "dimensionality.jsonl")


def assert_opens_in_kura_ui(kura: Path) -> None:
    convs, sums, projected = ui_view(kura)
    for chat_id in convs:  # App.tsx: "No summary found for conversation ..." otherwise
        assert sums.get(chat_id), chat_id
    for cluster in projected:  # cluster-details.tsx: an unknown id crashes the page
        assert set(cluster["chat_ids"]) <= set(convs), cluster["id"]
        assert cluster["count"] == len(cluster["chat_ids"])


def test_conversations_whose_summary_failed_are_left_out_and_reported(tmp_path: Path) -> None:
    convs = [conversation(f"c{i}") for i in range(1, 13)]  # c11, c12: summaries failed
    out = tmp_path / "out"
    export_batch(
        out,
        clusters=clusters(),
        assignments=assignments(),
        summaries=[summary(f"c{i}") for i in range(1, 11)],
        conversations=convs,
        min_size_shown=1,
    )
    convs_by_id, _, _ = ui_view(out / "kura")
    assert sorted(convs_by_id) == sorted(f"c{i}" for i in range(1, 11))
    assert_opens_in_kura_ui(out / "kura")
    report = read_report(out)
    assert report["left_out_without_summary"] == 2
    assert report["left_out_chat_ids"] == ["c11", "c12"]
    assert report["conversations"] == 10
    assert "kura start-app" in report["how_to_open"]
    assert "--dir" in report["how_to_open"]  # says it is not read


def test_summaries_without_conversations_get_an_empty_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sums = [summary(f"c{i}") for i in range(1, 11)]
    sums[0] = summary("c1", text="  ")
    export_batch(
        out,
        clusters=clusters(),
        assignments=assignments(),
        summaries=sums,
        conversations=[conversation("c2")],
        min_size_shown=1,
        created_at={"c3": WHEN},
    )
    convs, found, _ = ui_view(out / "kura")
    assert len(convs) == 10
    assert convs["c3"]["messages"] == []
    assert convs["c3"]["created_at"] == WHEN.isoformat()
    assert len(convs["c2"]["messages"]) == 2
    assert found["c1"] == PLACEHOLDER_SUMMARY
    assert_opens_in_kura_ui(out / "kura")
    report = read_report(out)
    assert (report["without_messages"], report["placeholder_summaries"]) == (9, 1)


def test_members_without_summary_are_dropped_from_chat_ids(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_batch(
        out,
        clusters=clusters(),
        assignments=assignments(),
        summaries=[summary(f"c{i}") for i in range(1, 5)],
        min_size_shown=1,
    )
    assert_opens_in_kura_ui(out / "kura")
    by_id = {c["id"]: c for c in read_jsonl(out / "kura" / "dimensionality.jsonl")}
    assert by_id["b2"]["chat_ids"] == []
    assert by_id["b1"]["count"] == 4
    assert read_report(out)["dropped_from_clusters"] == 5  # c5..c9 (c10 is an outlier)


def test_non_finite_numbers_never_reach_the_json(tmp_path: Path) -> None:
    nan = float("nan")
    odd = [c.model_copy(update={"x": nan, "y": float("inf")}) for c in clusters()]
    sums = [summary(f"c{i}").model_copy(update={"metadata": {"s": nan, "ok": 1}}) for i in (1, 2)]
    out = tmp_path / "out"
    export_batch(out, clusters=odd, assignments=assignments(), summaries=sums, min_size_shown=1)
    for name in ("conversations.json", "summaries.jsonl", "dimensionality.jsonl"):
        text = (out / "kura" / name).read_text()
        assert "NaN" not in text, name
        assert "Infinity" not in text, name
    assert read_jsonl(out / "kura" / "summaries.jsonl")[0]["metadata"] == {"ok": 1}


def msg(text: str, role: Literal["user", "assistant"] = "user") -> Message:
    return Message(created_at=WHEN, role=role, content=text)


def test_bound_messages_keeps_short_ones_and_says_where_it_cut() -> None:
    short = (msg("hi"), msg("hello", "assistant"))
    assert bound_messages(short) == (short, False)
    kept, cut = bound_messages((msg("a" * 30), msg("b" * 30), msg("c")), max_chars=40)
    assert cut
    assert [m.content[:1] for m in kept] == ["a", "b"]
    assert kept[1].content.startswith("b" * 10 + " [... cut by kura-stream: 20 more characters")
    assert "1 more messages" in kept[1].content
    many, cut = bound_messages([msg("x")] * 500)
    assert cut
    assert len(many) == 200


def test_an_embedded_record_with_the_worst_messages_fits_kafka() -> None:
    # Control characters are the worst case: six bytes each once escaped in JSON.
    worst = Conversation(
        chat_id="c" * 512,
        created_at=WHEN,
        messages=tuple(msg("\x01" * 50_000) for _ in range(300)),
    )
    item = EmbeddedConversation(
        chat_id=worst.chat_id,
        summary=Summary(chat_id=worst.chat_id, summary="s" * 2000, digest="d" * 2000),
        vector=tuple(np.ones(1024, dtype=np.float32).tolist()),
        embedder="e",
        created_at=WHEN,
        received_at=WHEN,
        **stored_messages(worst),
    )
    assert item.messages_truncated
    assert sum(len(m.content) for m in item.messages) < STORED_MESSAGE_CHARS + 100
    assert len(item.model_dump_json().encode()) < Settings().kafka.max_message_bytes // 4


def embedded(chat_id: str, messages: tuple[Message, ...]) -> EmbeddedConversation:
    return EmbeddedConversation(
        chat_id=chat_id,
        summary=summary(chat_id),
        vector=(1.0, 0.0),
        embedder="e",
        created_at=WHEN,
        received_at=WHEN,
        messages=messages,
    )


def test_the_service_export_writes_the_conversations_the_store_holds(tmp_path: Path) -> None:
    store = MemoryClusterStore(dim=2)
    items = [embedded(f"c{i}", (msg(f"question {i}"), msg("answer", "assistant"))) for i in (1, 2)]
    items.append(embedded("old", ()))  # stored before messages were kept
    payloads = [conversation_payload(item, WHEN) for item in items]
    payloads[1]["messages_truncated"] = True
    store.upsert_conversations(
        [
            ConversationPoint(
                chat_id=item.chat_id, vector=np.array(item.vector), cluster_id="b1", payload=p
            )
            for item, p in zip(items, payloads, strict=True)
        ]
    )
    store.upsert_clusters(
        [
            ClusterPoint(
                cluster_id="b1",
                centroid=np.array([1.0, 0.0], dtype=np.float32),
                meta=ClusterMeta(name="Questions", count=3),
            )
        ]
    )
    out = tmp_path / "out"
    export_store(store, out, min_size_shown=1)
    convs, _, projected = ui_view(out / "kura")
    assert [m["content"] for m in convs["c1"]["messages"]] == ["question 1", "answer"]
    assert convs["old"]["messages"] == []
    assert convs["old"]["created_at"] == WHEN.isoformat()
    assert sorted(projected[0]["chat_ids"]) == ["c1", "c2", "old"]
    assert_opens_in_kura_ui(out / "kura")
    report = read_report(out)
    assert (report["conversations"], report["without_messages"]) == (3, 1)
    assert report["messages_truncated"] == 1
