"""Kura's README Quick Start runs on kura_stream with only `kura` renamed in its imports.

The Quick Start text is stored verbatim (tests/fixtures/README.md says where from). Its data
set is read from a local folder through the same `Conversation.from_hf_dataset` call (the
Hub is not reachable in CI); with no LLM endpoint configured, the model classes run the
offline summariser and namers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
QUICKSTART = FIXTURES / "kura_quickstart.py.txt"
DATA = FIXTURES / "kura_quickstart_data"
HUB_NAME = '"ivanleomk/synthetic-gemini-conversations"'
CONVERSATIONS = 120
TOP_LINE = re.compile(r"^[╠╚]══ (?P<name>.+) \((?P<n>[\d,]+) conversations?, [\d.]+%\)$")
ENDPOINT_VARS = ("KURA_LLM_BASE_URL", "OPENAI_BASE_URL")


def renamed(text: str) -> str:
    """The Quick Start with `kura` -> `kura_stream` in its import lines, nothing else."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("from kura.", "import kura")):
            line = line.replace("kura", "kura_stream", 1)
        out.append(line)
    return "".join(out)


def quickstart_code() -> str:
    text = QUICKSTART.read_text(encoding="utf-8")
    assert text.count(HUB_NAME) == 1
    code = renamed(text).replace(HUB_NAME, repr(str(DATA)))
    changed = [(a, b) for a, b in zip(text.splitlines(), code.splitlines(), strict=True) if a != b]
    assert len(changed) == 9  # the eight kura imports and the data set's location
    assert all(a.startswith("from kura.") or HUB_NAME in a for a, _ in changed)
    return code


def run(code: str) -> None:
    exec(compile(code, "kura_quickstart.py", "exec"), {"__name__": "__main__"})


def top_level(tree: str) -> dict[str, int]:
    found = {}
    for line in tree.splitlines():
        match = TOP_LINE.match(line)
        if match:
            found[match["name"]] = int(match["n"].replace(",", ""))
    return found


@pytest.mark.usefixtures("models_dir")
def test_quickstart_prints_a_tree_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    code = quickstart_code()

    run(code)
    tree = capsys.readouterr().out

    assert f"Clusters ({CONVERSATIONS} conversations)" in tree
    tops = top_level(tree)
    assert 2 <= len(tops) <= 10  # MetaClusterModel's max_clusters
    assert sum(tops.values()) == CONVERSATIONS
    assert all(name and "small cluster" not in name for name in tops)
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").iterdir()}
    assert sorted(written) == [
        "clusters.jsonl",
        "dimensionality.jsonl",
        "meta_clusters.jsonl",
        "summaries.jsonl",
    ]
    assert any((tmp_path / ".summary").iterdir())

    # Same input: the second run reuses every checkpoint (none is rewritten), same tree.
    run(code)
    assert capsys.readouterr().out == tree
    again = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").iterdir()}
    assert again == written
