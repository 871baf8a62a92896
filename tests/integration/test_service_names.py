"""Names-only LLM mode on the real broker: offline names at once, LLM names land as events."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.types import ClusterEvent, ClusterEventKind
from tests.fakes.openai_server import RecordedRequest, Reply, running, tool
from tests.integration.service_harness import ServiceUnderTest, wait_for

pytestmark = pytest.mark.kafka

N = 200


async def _produce(svc: ServiceUnderTest, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all")
    await producer.start()
    try:
        topic = svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"]
        for c in load_sharegpt_conversations(n):
            await producer.send(topic, c.model_dump_json().encode(), key=c.chat_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _events(svc: ServiceUnderTest) -> list[ClusterEvent]:
    consumer = AIOKafkaConsumer(
        svc.env["KURA_KAFKA_TOPIC_CLUSTER_EVENTS"],
        bootstrap_servers=svc.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[ClusterEvent] = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for records in batch.values():
                out.extend(ClusterEvent.model_validate_json(r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda e: e.at)


def _all_llm_named(svc: ServiceUnderTest) -> bool:
    shown = [c for c in svc.get("/clusters") if c["level"] == 0 and c["visible"]]
    return bool(shown) and all(c["named_by"] == "llm" for c in shown)


async def test_offline_names_first_then_llm_names_as_renamed_events(
    kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> None:
    counter = itertools.count(1)

    def answer(request: RecordedRequest) -> Reply:
        k = next(counter)
        label: dict[str, Any] = {
            "summary": "Users asked about one subject. They got help.",
            "name": f"Streaming subject number {k}",
            "slug": f"streaming_subject_{k}",
        }
        return tool(label)

    with running(answer) as llm:
        svc = ServiceUnderTest(
            bootstrap=kafka_bootstrap,
            workdir=tmp_path,
            extra_env={
                "KURA_SERVICE_NAMES": "llm",
                "KURA_LLM_BASE_URL": llm.base_url,
                "KURA_LLM_MODEL": "fake-model",
                "KURA_LLM_TIMEOUT_S": "5",
                "KURA_CLUSTERING_TOP_LEVEL_CLUSTERS": "3",
            },
        )
        svc.start()
        try:
            await _produce(svc, N)
            wait_for(lambda: svc.get("/status")["conversations"] == N, 240, "not all stored")
            recompute = svc.cli("recompute")
            assert recompute.returncode == 0, recompute.stderr
            wait_for(lambda: _all_llm_named(svc), 180, "LLM names did not land")
            clusters = json.loads(svc.cli("clusters", "--json").stdout)
            events = await _events(svc)
        finally:
            svc.stop()
    base = [c for c in clusters if c["level"] == 0 and c["name"]]
    assert base
    assert all(c["name"].startswith("Streaming subject number") for c in base)
    announced_first = 0
    for c in base:
        mine = [e for e in events if c["id"] in (e.cluster_id, *e.related)]
        llm_renamed = [
            i
            for i, e in enumerate(mine)
            if e.kind == ClusterEventKind.RENAMED and e.detail.get("namer") == "llm"
        ]
        assert llm_renamed, f"no LLM renamed event for {c['id']}"
        # Offline names (the recompute's or the consumer's) were announced before the LLM's;
        # a cluster split off by the recompute has no event of its own that carries one.
        earlier = [e.name for e in mine[: llm_renamed[0]] if e.name]
        assert not any(n.startswith("Streaming subject") for n in earlier)
        announced_first += bool(earlier)
    assert announced_first >= len(base) // 2
