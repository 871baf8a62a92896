"""Hardening on the real broker: poison records, duplicates, counters and a crash mid-batch."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.types import Conversation, Message
from tests.integration.service_harness import ServiceUnderTest, wait_for
from tests.integration.test_service import _payloads, _produce, _read_all

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def sample() -> list[Conversation]:
    return load_sharegpt_conversations(200)


@pytest.fixture
def service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> Iterator[ServiceUnderTest]:
    svc = ServiceUnderTest(bootstrap=kafka_bootstrap, workdir=tmp_path)
    yield svc
    svc.stop()


POISON: list[tuple[str | None, bytes]] = [
    ("deep", b"[" * 5000 + b"]" * 5000),
    ("deep-object", b'{"a":' * 3000 + b"1" + b"}" * 3000),
    ("huge-number", b'{"chat_id": ' + b"7" * 6000 + b"}"),
    ("not-utf8", b'{"chat_id": "\xff\xfe\xfd", "messages": []}'),
    ("wrong-types", b'{"chat_id": ["x"], "created_at": 5, "messages": {"a": 1}}'),
]


async def _produce_with_bad_header(svc: ServiceUnderTest, conversation: Conversation) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"],
            conversation.model_dump_json().encode(),
            key=conversation.chat_id.encode(),
            headers=[("content-type", b"\xff\xfe not utf-8")],
        )
    finally:
        await producer.stop()


def _edited(conversation: Conversation) -> Conversation:
    first = conversation.messages[0]
    changed = Message(created_at=first.created_at, role=first.role, content="something else")
    return conversation.model_copy(update={"messages": (changed, *conversation.messages[1:])})


async def test_poison_records_and_resends_never_stall_and_counters_survive_a_restart(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    good = _payloads(sample[:60])
    resent = _payloads(sample[:3])  # the same content again: duplicates
    conflicting = _payloads([_edited(sample[3])])  # other content under a stored chat_id
    await _produce(service, good[:30] + POISON + good[30:])
    wait_for(lambda: service.get("/status")["conversations"] == 60, 180, "good ones not stored")
    await _produce(service, resent + conflicting)
    await _produce_with_bad_header(service, sample[60])
    wait_for(lambda: service.get("/status")["conversations"] == 61, 120, "bad header stalled")
    wait_for(lambda: service.get("/status")["duplicates"] == 3, 60, "duplicates not counted")
    dead = [json.loads(v) for v in await _read_all(service, "KURA_KAFKA_TOPIC_DLQ", 6)]
    by_key = {d["key"]: d for d in dead}
    assert set(by_key) == {k for k, _ in POISON} | {sample[3].chat_id}
    assert "nested too deeply" in by_key["deep"]["reason"]
    assert "nested too deeply" in by_key["deep-object"]["reason"]
    assert "not readable JSON" in by_key["huge-number"]["reason"]
    assert "not JSON" in by_key["not-utf8"]["reason"]
    assert "invalid conversation" in by_key["wrong-types"]["reason"]
    assert "conflicting duplicate" in by_key[sample[3].chat_id]["reason"]
    assert by_key[sample[3].chat_id]["stage"] == "assign"
    wait_for(lambda: service.get("/status")["lag"] == 0, 60, "the partitions did not move on")
    status = service.get("/status")
    assert (status["dlq"], status["duplicates"]) == (6, 3)
    assert service.stop() == 0
    service.start()
    again = service.get("/status")
    assert (again["conversations"], again["dlq"], again["duplicates"]) == (61, 6, 3)


async def test_a_crash_between_the_store_and_the_topic_loses_no_assignment(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    batch = sample[:100]
    service.module = "tests.integration.crash_hooks"
    service.extra_env["KURA_TEST_CRASH_AFTER_STORE"] = "1"
    service.start()
    await _produce(service, _payloads(batch))
    assert service.proc is not None
    service.proc.wait(timeout=120)  # it died right after its first store write
    assert service.proc.returncode == 137
    service.module = "kura_stream"
    service.start()
    wait_for(lambda: service.get("/status")["conversations"] == 100, 180, "not all stored")
    wait_for(lambda: service.get("/status")["lag"] == 0, 60, "lag")
    values = await _read_all(service, "KURA_KAFKA_TOPIC_ASSIGNMENTS", 10**6, timeout_s=10)
    history: dict[str, list[str | None]] = defaultdict(list)
    for value in values:
        answer = json.loads(value)
        history[answer["chat_id"]].append(answer["cluster_id"])
    assert set(history) == {c.chat_id for c in batch}
    # Exactly once per change: a conversation appears again only when its cluster changed.
    repeats = {c: h for c, h in history.items() if any(a == b for a, b in itertools.pairwise(h))}
    assert repeats == {}
    events = [
        json.loads(v)
        for v in await _read_all(service, "KURA_KAFKA_TOPIC_CLUSTER_EVENTS", 10**6, timeout_s=10)
    ]
    announced = {e["cluster_id"] for e in events if e["kind"] in ("created", "grown")}
    placed = {c for h in history.values() for c in h if c}
    assert placed <= announced
