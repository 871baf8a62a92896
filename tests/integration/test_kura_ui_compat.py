"""Our kura/ export files, read by Kura's own web UI code (parse.ts, tree.ts, zod) under node.

tests/fixtures/kura_ui holds Kura's UI parsing code, copied unchanged from 567-labs/kura, and
check.ts, which does with the parsed files what App.tsx and cluster-details.tsx do.
scripts/kura_ui_deps.sh installs the pinned zod and tsx (integrity-checked) under .cache/node.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kura_stream.batch import run_batch
from kura_stream.bootstrap import build_insight
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.export import read_report
from kura_stream.settings import Settings
from kura_stream.stages.summarise import SummaryError
from kura_stream.types import Conversation, Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.integration.service_harness import ServiceUnderTest, wait_for
from tests.unit.test_export import export as unit_export

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kura_ui() -> Path:
    """The folder where Kura's UI code and its pinned packages are set up."""
    setup = subprocess.run(
        ["bash", "scripts/kura_ui_deps.sh"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert setup.returncode == 0, setup.stderr
    return ROOT / setup.stdout.strip().splitlines()[-1]


def ui_check(runner: Path, kura: Path) -> dict[str, Any]:
    """Run check.ts over kura/'s three UI files; its one-line JSON verdict."""
    files = [
        str(kura / n) for n in ("conversations.json", "summaries.jsonl", "dimensionality.jsonl")
    ]
    done = subprocess.run(
        [str(runner / "node_modules/.bin/tsx"), "check.ts", *files],
        cwd=runner,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    verdict: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["ok"] == (done.returncode == 0)
    return verdict


def test_the_check_refuses_what_kura_ui_refuses(kura_ui: Path, tmp_path: Path) -> None:
    kura = unit_export(tmp_path) / "kura"
    assert ui_check(kura_ui, kura)["ok"]
    convs = json.loads((kura / "conversations.json").read_text())
    extra = {**convs[0], "chat_id": "unsummarised"}
    (kura / "conversations.json").write_text(json.dumps([*convs, extra]))
    verdict = ui_check(kura_ui, kura)
    assert verdict["reason"] == "Error: No summary found for conversation unsummarised"
    (kura / "conversations.json").write_text(json.dumps(convs[1:]))
    assert ui_check(kura_ui, kura)["reason"] == "cluster chat ids with no conversation"
    (kura / "conversations.json").write_text(json.dumps([{**convs[0], "metadata": {"a": None}}]))
    assert ui_check(kura_ui, kura)["reason"] == "conversations file refused"


class FailSome:
    """A summariser that fails every fifth conversation, as an LLM sometimes does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failed: set[str] = set()

    @property
    def name(self) -> str:
        return f"fail-some/{self.inner.name}"

    async def summarise(self, conversation: Conversation) -> Summary:
        if int(conversation.chat_id.encode().hex(), 16) % 5 == 0:
            self.failed.add(conversation.chat_id)
            raise SummaryError("refused by the model")
        summary: Summary = await self.inner.summarise(conversation)
        return summary


async def test_a_batch_run_with_failed_summaries_opens_in_kura_ui(
    kura_ui: Path, tmp_path: Path
) -> None:
    conversations = load_sharegpt_conversations(80)
    insight = build_insight(Settings(), offline=True, embedder=HashEmbedder(dim=128))
    failing = FailSome(insight.summariser)
    result = await run_batch(
        conversations,
        insight=replace(insight, summariser=failing),
        out=tmp_path / "out",
        cache_path=tmp_path / "cache.sqlite",
        min_size_shown=1,
        k=6,
    )
    assert failing.failed
    assert len(result.failures) == len(failing.failed)
    verdict = ui_check(kura_ui, tmp_path / "out" / "kura")
    assert verdict["ok"], verdict
    assert verdict["conversations"] == verdict["summaries"] == len(result.summaries)
    assert verdict["clusters"] == verdict["tree_nodes"] == len(result.clusters)
    assert verdict["messages"] > verdict["conversations"]
    report = read_report(tmp_path / "out")
    assert report["left_out_without_summary"] == len(failing.failed)
    assert set(report["left_out_chat_ids"]) == failing.failed


@pytest.mark.kafka
async def test_a_service_export_opens_in_kura_ui(
    kura_ui: Path, kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> None:
    svc = ServiceUnderTest(
        bootstrap=kafka_bootstrap,
        workdir=tmp_path,
        extra_env={"KURA_SERVICE_EXPORT_DIR": str(tmp_path)},
    )
    conversations = load_sharegpt_conversations(150)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(c.model_dump_json() + "\n" for c in conversations))
    try:
        svc.start()
        produced = svc.cli("produce", str(source))
        assert produced.returncode == 0, produced.stderr
        wait_for(lambda: svc.get("/status")["conversations"] == 150, 240, "not all stored")
        assert svc.recompute() == "completed"
        exported = svc.cli("export", str(tmp_path / "out"))
        assert exported.returncode == 0, exported.stderr
        assert "kura start-app" in exported.stderr
        clusters = svc.get("/clusters")
    finally:
        svc.stop()
    verdict = ui_check(kura_ui, tmp_path / "out" / "kura")
    assert verdict["ok"], verdict
    assert verdict["conversations"] == verdict["summaries"] == 150
    assert verdict["clusters"] == verdict["tree_nodes"] == len(clusters)
    assert verdict["messages"] >= 2 * 150
    report = read_report(tmp_path / "out")
    assert report["without_messages"] == 0
    assert report["left_out_without_summary"] == 0
