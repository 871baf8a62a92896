"""Shared loader parts: streamed and cut-off JSON arrays, format detection, time parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kura_stream.loaders import (
    LoadError,
    detect_format,
    iter_conversations,
    load_conversations,
)
from kura_stream.loaders.base import parse_time
from kura_stream.loaders.containers import iter_json_array
from tests.unit.test_loaders import (
    claude_conv,
    claude_msg,
    kura_record,
    sharegpt_record,
    write_jsonl,
)

# --- cut-off and malformed JSON arrays -----------------------------------------------------------


def sharegpt_text(n: int) -> str:
    rows = [
        sharegpt_record(
            f"id{i}",
            ("human", f'question {i} with "quotes", \\ and unicode é ✓ and \n newline'),
            ("gpt", f"answer {i} " + "long " * (i * 7)),
        )
        for i in range(n)
    ]
    rows[3]["score"] = 12345.678  # a number that a cut can split
    return json.dumps(rows, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_truncated_sharegpt_recovers_every_whole_conversation(tmp_path: Path, chunk: int) -> None:
    text = sharegpt_text(12)
    full = json.loads(text)
    ends = [0]
    decoder = json.JSONDecoder()
    # Where each element ends in the text, to know how many are whole at a cut.
    pos = text.index("[") + 1
    for _ in full:
        while text[pos] in " \n,":
            pos += 1
        _, pos = decoder.raw_decode(text, pos)
        ends.append(pos)
    path = tmp_path / "cut.json"
    for cut in range(len(text) - 1, 0, -max(1, len(text) // 97)):
        path.write_text(text[:cut], encoding="utf-8")
        items = list(iter_json_array(path, chunk_chars=chunk))
        whole = sum(1 for e in ends[1:] if e <= cut)
        values = [v for _, v in (i for i in items if not isinstance(i, LoadError))]
        errors = [i for i in items if isinstance(i, LoadError)]
        assert values == full[:whole], cut
        assert len(errors) == 1, cut
        assert errors[0].reason.startswith("truncated"), cut
        assert errors[0].line_or_index == whole


def test_truncated_sharegpt_file_loads_whole_conversations(tmp_path: Path) -> None:
    text = sharegpt_text(30)
    path = tmp_path / "sg.json"
    path.write_text(text[: len(text) * 2 // 3])
    result = load_conversations(path)
    assert 10 <= len(result.conversations) < 30
    assert [c.chat_id for c in result.conversations] == [
        f"id{i}" for i in range(len(result.conversations))
    ]
    assert result.errors[-1].reason.startswith("truncated")


def test_json_array_syntax_error_stops_with_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"id": 1}, {"id": 2,, "x": 1}, {"id": 3}]')
    items = list(iter_json_array(path))
    assert items[0] == (0, {"id": 1})
    assert isinstance(items[1], LoadError)
    assert items[1].line_or_index == 1
    assert items[1].reason.startswith("invalid JSON in element 1")


def test_json_array_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("\ufeff  [ ]  ")
    assert list(iter_json_array(path)) == []
    path.write_text('[{"a": 1},]')  # trailing comma tolerated
    assert list(iter_json_array(path)) == [(0, {"a": 1})]
    path.write_text('{"a": 1}')
    (err,) = list(iter_json_array(path))
    assert isinstance(err, LoadError)
    assert err.reason == "not a JSON array"
    path.write_text("[1, 22")  # a number at the end could be longer: not taken as whole
    items = list(iter_json_array(path, chunk_chars=3))
    assert items[0] == (0, 1)
    assert isinstance(items[1], LoadError)
    assert items[1].line_or_index == 1


# --- format detection ---------------------------------------------------------------------------


def test_detect_format_and_load_each(tmp_path: Path) -> None:
    kura_jsonl = write_jsonl(tmp_path / "k.jsonl", [kura_record("k")])
    kura_list = tmp_path / "k.json"
    kura_list.write_text(json.dumps([kura_record("kl")]))
    claude = tmp_path / "conversations.json"
    claude.write_text(
        json.dumps([claude_conv("c", [claude_msg("human", "2024-06-01T09:00:00Z", "x")])])
    )
    sharegpt = tmp_path / "sg.data"  # no telling extension: content decides
    sharegpt.write_text(json.dumps([sharegpt_record("s", ("human", "q"), ("gpt", "a"))]))
    assert detect_format(kura_jsonl) == "kura"
    assert detect_format(kura_list) == "kura"
    assert detect_format(claude) == "claude"
    assert detect_format(sharegpt) == "sharegpt"
    for path, cid in [(kura_jsonl, "k"), (kura_list, "kl"), (claude, "c"), (sharegpt, "s")]:
        result = load_conversations(path)
        assert [c.chat_id for c in result.conversations] == [cid]
    assert load_conversations(kura_jsonl, format="jsonl").conversations[0].chat_id == "k"


def test_detect_skips_leading_bad_lines(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "x.jsonl", ["garbage", sharegpt_record("s", ("human", "q"), ("gpt", "a"))]
    )
    assert detect_format(path) == "sharegpt"
    result = load_conversations(path)
    assert [c.chat_id for c in result.conversations] == ["s"]
    assert [e.line_or_index for e in result.errors] == [1]


def test_load_conversations_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_conversations(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert load_conversations(empty).conversations == []
    path = write_jsonl(tmp_path / "k.jsonl", [kura_record("k")])
    with pytest.raises(ValueError, match="unknown format"):
        list(iter_conversations(path, format="xml"))  # type: ignore[arg-type]


# --- timestamps ----------------------------------------------------------------------------------


def test_parse_time_forms() -> None:
    utc = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2024-01-02T03:04:05Z") == utc
    assert parse_time("2024-01-02T03:04:05") == utc  # naive means UTC
    assert parse_time("2024-01-02T04:04:05+01:00") == utc
    assert parse_time(utc.timestamp()) == utc
    assert parse_time(int(utc.timestamp() * 1000)) == utc  # milliseconds
    assert parse_time(None) is None
    assert parse_time("") is None
