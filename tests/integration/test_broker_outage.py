"""A broker outage on the real broker: a quiet log, a degraded /health, recovery, exact counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from kura_stream.adapters.kafka_server import LocalKafkaServer
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.types import Conversation
from tests.fixtures_kafka import local_broker_config
from tests.integration.service_harness import ServiceUnderTest, wait_for

pytestmark = pytest.mark.kafka

OUTAGE_S = 20.0
MAX_OUTAGE_LINES = 40
"""Before the fix a 20 s outage wrote about 8,000 lines (400 a second, almost all aiokafka
ERRORs); now the first line of each kind and one summary per 30 s remain (9 lines)."""


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafkaServer]:
    """A broker of this test alone, so stopping it harms no other test."""
    broker = LocalKafkaServer(local_broker_config(tmp_path / "kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _produce(svc: ServiceUnderTest, conversations: list[Conversation]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all")
    await producer.start()
    try:
        topic = svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"]
        sent = [
            await producer.send(topic, c.model_dump_json().encode(), key=c.chat_id.encode())
            for c in conversations
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _health(svc: ServiceUnderTest) -> str:
    try:
        return str(httpx.get(f"{svc.url}/health", timeout=5).json()["status"])
    except httpx.HTTPError as err:
        return f"unanswered: {err!r}"


def _log_lines(workdir: Path) -> list[str]:
    text = "".join(p.read_text(errors="replace") for p in sorted(workdir.glob("serve-*.log")))
    return text.splitlines()


def _watch_health(svc: ServiceUnderTest, seconds: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(_health(svc))
        time.sleep(1.0)
    return seen


async def test_an_outage_logs_little_reads_degraded_and_recovers_with_exact_counts(
    private_broker: LocalKafkaServer, tmp_path: Path, static_models: None
) -> None:
    sample = load_sharegpt_conversations(300)
    svc = ServiceUnderTest(bootstrap=private_broker.bootstrap, workdir=tmp_path)
    svc.start()
    try:
        await _produce(svc, sample[:200])
        wait_for(lambda: svc.get("/status")["conversations"] >= 1, 240, "stream did not start")
        mark = len(_log_lines(tmp_path))
        private_broker.stop()  # mid-stream: some of the 200 may still be in flight
        health = _watch_health(svc, OUTAGE_S)
        outage = _log_lines(tmp_path)[mark:]

        private_broker.start()  # the same ports and data dir
        wait_for(lambda: _health(svc) == "ok", 180, "the service did not recover by itself")
        await _produce(svc, sample[200:])
        wait_for(lambda: svc.get("/status")["conversations"] == 300, 240, "not all 300 stored")
        await asyncio.sleep(3)  # anything stored twice would show up now
        status = svc.get("/status")
        base = [c for c in svc.get("/clusters") if c["level"] == 0]
    finally:
        assert svc.stop() == 0
    print(f"{len(outage)} log lines in a {OUTAGE_S:.0f}s outage; /health: {health}")
    assert len(outage) < MAX_OUTAGE_LINES, "\n".join(outage[:200])
    # The lag monitor asks every 5 s: degraded within that, and from then on until restart.
    assert "degraded" in health[:8], health
    assert set(health[health.index("degraded") :]) == {"degraded"}, health
    assert status["conversations"] == 300
    assert sum(c["count"] for c in base) + status["outliers"] == 300
    unclosed = [line for line in _log_lines(tmp_path) if "Unclosed" in line]
    assert not unclosed, unclosed
