"""`serve --role ingest` beside `serve --role assign` on one broker and one embedded store."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kura_stream.adapters.kafka_client import topic_partitions
from kura_stream.types import Conversation, Message
from tests.integration.service_harness import ServiceUnderTest, wait_for

pytestmark = pytest.mark.kafka

N = 240
TOPICS = ("trains to Cambridge", "a cheap hotel", "an Italian restaurant", "a taxi at noon")


def _conversations(n: int) -> list[Conversation]:
    now = datetime.now(UTC)
    return [
        Conversation(
            chat_id=f"role-{i}",
            created_at=now,
            messages=(
                Message(created_at=now, role="user", content=f"I need {TOPICS[i % 4]}, case {i}"),
                Message(created_at=now, role="assistant", content="Sure, let me check that."),
            ),
        )
        for i in range(n)
    ]


@pytest.fixture
def roles(
    kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> Iterator[tuple[ServiceUnderTest, ServiceUnderTest]]:
    """An assign process and an ingest process: same topics, group and store folder."""
    assigner = ServiceUnderTest(
        bootstrap=kafka_bootstrap, workdir=tmp_path, serve_args=("--role", "assign")
    )
    ingest = ServiceUnderTest(
        bootstrap=kafka_bootstrap,
        workdir=tmp_path,
        tag=assigner.tag,
        serve_args=("--role", "ingest"),
        # One consumer: its group does not rebalance (3 s) as a second one joins.
        extra_env={"KURA_SERVICE_SUMMARISE_CONSUMERS": "1"},
    )
    try:
        # Started together: an ingest worker that opened the embedded store would make one of
        # the two fail on the store's lock.
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(s.start) for s in (assigner, ingest)]:
                started.result()
        yield assigner, ingest
    finally:
        for svc in (ingest, assigner):
            svc.stop()


async def _produce(svc: ServiceUnderTest, convs: list[Conversation]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        topic = svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"]
        sent = [
            await producer.send(topic, c.model_dump_json().encode(), key=c.chat_id.encode())
            for c in convs
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _whole_topic(svc: ServiceUnderTest, topic_var: str) -> list[bytes]:
    """Every record in the topic now, up to its end offsets."""
    topic = svc.env[topic_var]
    tps = [TopicPartition(topic, p) for p in await topic_partitions(svc.bootstrap, topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=svc.bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[bytes] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(r.value for r in records if r.value is not None)
        return out
    finally:
        await consumer.stop()


def test_ingest_and_assign_processes_assign_each_conversation_once(
    roles: tuple[ServiceUnderTest, ServiceUnderTest],
) -> None:
    assigner, ingest = roles
    convs = _conversations(N)
    asyncio.run(_produce(assigner, convs))
    wait_for(lambda: assigner.get("/status")["conversations"] >= N, 120, "not all assigned")

    placements: dict[str, list[str | None]] = defaultdict(list)  # by chat_id, in order
    for value in asyncio.run(_whole_topic(assigner, "KURA_KAFKA_TOPIC_ASSIGNMENTS")):
        record = json.loads(value)
        placements[record["chat_id"]].append(record["cluster_id"])
    assert set(placements) == {c.chat_id for c in convs}
    # Each conversation placed once: in a cluster, or in the outlier pool (None) and then,
    # when a cluster forms or grows around it, in that cluster.
    twice = {k: p for k, p in placements.items() if len(p) > 1 and (len(p) > 2 or p[0] or not p[1])}
    assert not twice
    status = assigner.get("/status")
    assert (status["conversations"], status["duplicates"]) == (N, 0)
    # The ingest worker summarised them all, holds no store and serves only /health, /metrics.
    assert ingest.get_any("/health") == {"status": "ok", "broker": True, "store": None, "llm": True}
    metrics = httpx.get(f"{ingest.url}/metrics", timeout=30).text
    assert f"kura_ingested_total {float(N)}" in metrics
    assert httpx.get(f"{ingest.url}/status", timeout=30).status_code == 404
    assert (ingest.stop(), assigner.stop()) == (0, 0)
