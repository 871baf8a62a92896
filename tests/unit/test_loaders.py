"""Loaders, format by format: records read, bad records reported beside the good ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kura_stream.loaders import (
    CREATED_AT_MISSING,
    UNKNOWN_CREATED_AT,
    load_claude_export,
    load_hf_dataset,
    load_kura_dump,
    load_kura_jsonl,
    load_sharegpt,
)
from kura_stream.types import Conversation


def kura_record(chat_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "created_at": "2024-05-01T10:00:00Z",
        "messages": [
            {"created_at": "2024-05-01T10:00:00Z", "role": "user", "content": text},
            {"created_at": "2024-05-01T10:00:05Z", "role": "assistant", "content": "hi there"},
        ],
        "metadata": {"lang": "en"},
        **extra,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def sharegpt_record(cid: str, *turns: tuple[str, str]) -> dict[str, Any]:
    return {"id": cid, "conversations": [{"from": f, "value": v} for f, v in turns]}


# --- Kura JSONL -------------------------------------------------------------------------------


def test_kura_jsonl_good_records_load(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [kura_record("a"), kura_record("b")])
    result = load_kura_jsonl(path)
    assert result.errors == []
    assert [c.chat_id for c in result.conversations] == ["a", "b"]
    first = result.conversations[0]
    assert first.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert [m.role for m in first.messages] == ["user", "assistant"]
    assert first.metadata == {"lang": "en"}


def test_kura_jsonl_bad_records_reported_with_line_and_reason(tmp_path: Path) -> None:
    no_messages = {"chat_id": "x", "created_at": "2024-05-01T10:00:00Z"}
    empty = {**kura_record("e"), "messages": []}
    bad_role = kura_record("r")
    bad_role["messages"][1]["role"] = "narrator"
    bad_meta = kura_record("m", metadata={"nested": {"no": "dicts"}})
    rows = [
        kura_record("ok1"),  # line 1
        "{not json",  # line 2
        no_messages,  # line 3
        empty,  # line 4
        "",  # line 5: blank, skipped silently
        bad_role,  # line 6
        kura_record("ok1", text="again"),  # line 7: duplicate id
        bad_meta,  # line 8
        [1, 2],  # line 9: not an object
        kura_record("ok2"),  # line 10
    ]
    result = load_kura_jsonl(write_jsonl(tmp_path / "c.jsonl", rows))
    assert [c.chat_id for c in result.conversations] == ["ok1", "ok2"]
    by_line = {e.line_or_index: e.reason for e in result.errors}
    assert set(by_line) == {2, 3, 4, 6, 7, 8, 9}
    assert by_line[2].startswith("invalid JSON")
    assert by_line[3] == "messages: missing or not a list"
    assert by_line[4] == "messages: empty"
    assert by_line[6] == "messages.1: unknown role 'narrator'"
    assert by_line[7] == "duplicate chat_id 'ok1'"
    assert "metadata" in by_line[8]
    assert "expected a JSON object" in by_line[9]
    assert all(e.source == str(tmp_path / "c.jsonl") for e in result.errors)


def test_missing_created_at_policy(tmp_path: Path) -> None:
    from_messages = kura_record("m")
    del from_messages["created_at"]
    nothing = {
        "chat_id": "n",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    result = load_kura_jsonl(write_jsonl(tmp_path / "c.jsonl", [from_messages, nothing]))
    assert result.errors == []
    m, n = result.conversations
    assert m.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)  # earliest message
    assert CREATED_AT_MISSING not in m.metadata
    assert n.created_at == UNKNOWN_CREATED_AT
    assert n.metadata[CREATED_AT_MISSING] is True
    assert all(msg.created_at == UNKNOWN_CREATED_AT for msg in n.messages)


def test_system_skipped_blank_dropped_and_all_blank_refused(tmp_path: Path) -> None:
    rec = kura_record("s")
    rec["messages"].insert(0, {"role": "system", "content": "be nice"})
    rec["messages"].append({"role": "user", "content": "   "})
    blank = kura_record("b", text=" ")
    blank["messages"] = blank["messages"][:1]
    result = load_kura_jsonl(write_jsonl(tmp_path / "c.jsonl", [rec, blank]))
    assert [m.content for m in result.conversations[0].messages] == ["hello", "hi there"]
    assert [(e.line_or_index, e.reason) for e in result.errors] == [(2, "no messages with text")]


def test_error_excerpt_is_scrubbed_and_short(tmp_path: Path) -> None:
    rec = {"chat_id": "p", "messages": [], "note": "write to jane.doe@example.com " + "x" * 500}
    result = load_kura_jsonl(write_jsonl(tmp_path / "c.jsonl", [rec]))
    (error,) = result.errors
    assert "jane.doe@example.com" not in error.excerpt
    assert "[EMAIL]" in error.excerpt
    assert len(error.excerpt) <= 200


# --- Kura dump (JSON list) ----------------------------------------------------------------------


def test_kura_dump_reports_bad_items_by_index(tmp_path: Path) -> None:
    items = [kura_record("a"), {"chat_id": "", "messages": []}, 42, kura_record("b")]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(items))
    result = load_kura_dump(path)
    assert [c.chat_id for c in result.conversations] == ["a", "b"]
    assert [(e.line_or_index, e.reason) for e in result.errors] == [
        (1, "messages: empty"),
        (2, "expected a JSON object, got int"),
    ]


def test_kura_dump_round_trips_kura_json(tmp_path: Path) -> None:
    conv = Conversation.model_validate(kura_record("rt"))
    path = tmp_path / "dump.json"
    path.write_text(json.dumps([conv.model_dump(mode="json")]))
    assert load_kura_dump(path).conversations == [conv]


# --- Claude export ------------------------------------------------------------------------------


def claude_conv(uuid: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": "t",
        "created_at": "2024-06-01T09:00:00Z",
        "chat_messages": messages,
    }


def claude_msg(sender: str, when: str, *texts: str, **extra: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": t} for t in texts]
    return {"sender": sender, "created_at": when, "content": content, **extra}


def test_claude_export_mirrors_kura(tmp_path: Path) -> None:
    msgs = [
        claude_msg("assistant", "2024-06-01T09:00:05Z", "answer"),
        # Same time as the assistant reply below: the human message sorts first, as in Kura.
        claude_msg("assistant", "2024-06-01T09:00:00Z", "second at t0"),
        claude_msg("human", "2024-06-01T09:00:00Z", "part one", "part two"),
    ]
    msgs[0]["content"].append({"type": "tool_use", "name": "search"})
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([claude_conv("u1", msgs)]))
    result = load_claude_export(path)
    assert result.errors == []
    (conv,) = result.conversations
    assert conv.chat_id == "u1"
    assert [(m.role, m.content) for m in conv.messages] == [
        ("user", "part one\npart two"),
        ("assistant", "second at t0"),
        ("assistant", "answer"),
    ]
    assert conv.metadata == {}


def test_claude_export_bad_records(tmp_path: Path) -> None:
    good = claude_conv("g", [claude_msg("human", "2024-06-01T09:00:00Z", "hi")])
    unknown = claude_conv("u", [claude_msg("robot", "2024-06-01T09:00:00Z", "hi")])
    empty = claude_conv("e", [])
    no_uuid = {**good, "uuid": None}
    attachments_only = claude_conv("a", [claude_msg("human", "2024-06-01T09:00:00Z")])
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([unknown, good, empty, no_uuid, attachments_only]))
    result = load_claude_export(path)
    assert [c.chat_id for c in result.conversations] == ["g"]
    assert [(e.line_or_index, e.reason) for e in result.errors] == [
        (0, "chat_messages.0: unknown sender 'robot'"),
        (2, "chat_messages: empty"),
        (3, "missing chat_id"),
        (4, "no messages with text"),
    ]


# --- ShareGPT -----------------------------------------------------------------------------------


def test_sharegpt_roles_mapped(tmp_path: Path) -> None:
    rec = sharegpt_record(
        "s1",
        ("system", "You are helpful"),
        ("human", "q1"),
        ("gpt", "a1"),
        ("human", "q2"),
        ("chatgpt", "a2"),
        ("user", "q3"),
        ("bing", "a3"),
        ("human", "q4"),
        ("bard", "a4"),
    )
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([rec]))
    (conv,) = load_sharegpt(path).conversations
    assert [m.role for m in conv.messages] == ["user", "assistant"] * 4
    assert conv.messages[0].content == "q1"
    assert conv.metadata == {CREATED_AT_MISSING: True}


def test_sharegpt_bad_records(tmp_path: Path) -> None:
    rows = [
        sharegpt_record("ok", ("human", "q"), ("gpt", "a")),
        sharegpt_record("role", ("human", "q"), ("wizard", "a")),
        {"id": "empty", "conversations": []},
        sharegpt_record("sys", ("system", "only a system prompt")),
        {"conversations": [{"from": "human", "value": "no id"}]},
    ]
    path = tmp_path / "sg.jsonl"
    write_jsonl(path, rows)  # ShareGPT as JSON lines works too
    result = load_sharegpt(path)
    assert [c.chat_id for c in result.conversations] == ["ok"]
    assert [(e.line_or_index, e.reason) for e in result.errors] == [
        (2, "conversations.1: unknown role 'wizard'"),
        (3, "conversations: empty"),
        (4, "no messages with text"),
        (5, "missing chat_id"),
    ]


# --- Hugging Face datasets (local files: the hub is not reachable here) --------------------------


def test_hf_dataset_from_local_json_files(tmp_path: Path) -> None:
    rows = [
        {
            "conversation_id": "h1",
            "ts": "2024-03-01T12:00:00Z",
            "conversation": [
                {"role": "user", "content": "How do I sort a list?"},
                {"role": "assistant", "content": "Use sorted()."},
            ],
            "model": "m1",
        },
        {
            "conversation_id": "h2",
            "ts": None,
            "conversation": [{"role": "user", "content": "hi"}, {"role": "alien", "content": "?"}],
            "model": "m2",
        },
        {"conversation_id": None, "ts": None, "conversation": [], "model": "m3"},
        {
            "conversation_id": "h4",
            "ts": None,
            "conversation": [{"role": "human", "content": "q"}, {"role": "gpt", "content": "a"}],
            "model": "m4",
        },
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    result = load_hf_dataset(
        "json",
        data_files=str(path),
        chat_id_fn=lambda r: r["conversation_id"],
        created_at_fn=lambda r: r["ts"],
        messages_fn=lambda r: r["conversation"],
        metadata_fn=lambda r: {"model": r["model"]},
    )
    assert [c.chat_id for c in result.conversations] == ["h1", "h4"]
    h1, h4 = result.conversations
    assert h1.created_at == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert h1.metadata == {"model": "m1"}
    assert h4.metadata == {"model": "m4", CREATED_AT_MISSING: True}
    assert [(e.line_or_index, e.reason) for e in result.errors] == [
        (1, "messages.1: unknown role 'alien'"),
        (2, "messages: empty"),
    ]
    assert result.errors[0].source == "hf:json[train]"


def test_hf_dataset_kura_defaults_and_limit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "k.jsonl", [kura_record(f"c{i}") for i in range(5)])
    result = load_hf_dataset("json", data_files=str(path), max_conversations=3)
    assert [c.chat_id for c in result.conversations] == ["c0", "c1", "c2"]
    failing = load_hf_dataset("json", data_files=str(path), chat_id_fn=lambda r: r["no_such_field"])
    assert failing.conversations == []
    assert failing.errors[0].reason.startswith("chat_id_fn: KeyError")
