"""The streaming service on the real broker: exact counts, crash recovery, DLQ, recompute."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.types import Conversation
from tests.integration.service_harness import ServiceUnderTest, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def sample() -> list[Conversation]:
    return load_sharegpt_conversations(700)


@pytest.fixture
def service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> Iterator[ServiceUnderTest]:
    svc = ServiceUnderTest(
        bootstrap=kafka_bootstrap,
        workdir=tmp_path,
        extra_env={
            "KURA_KAFKA_MAX_MESSAGE_BYTES": "300000",
            "KURA_CLUSTERING_TOP_LEVEL_CLUSTERS": "3",
        },
    )
    yield svc
    svc.stop()


async def _produce(svc: ServiceUnderTest, values: list[tuple[str | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all")
    await producer.start()
    try:
        topic = svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"]
        futures = [
            await producer.send(topic, value, key=key.encode() if key else None)
            for key, value in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _read_all(
    svc: ServiceUnderTest, topic_var: str, expect: int, timeout_s: float = 60
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        svc.env[topic_var],
        bootstrap_servers=svc.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(out) < expect and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                out.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return out


def _payloads(conversations: list[Conversation]) -> list[tuple[str | None, bytes]]:
    return [(c.chat_id, c.model_dump_json().encode()) for c in conversations]


def _counts_consistent(svc: ServiceUnderTest, n: int) -> None:
    status = svc.get("/status")
    assert status["conversations"] == n
    base = [c for c in svc.get("/clusters") if c["level"] == 0]
    assert sum(c["count"] for c in base) + status["outliers"] == n


async def test_n_in_exactly_n_stored_and_assigned(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    batch = sample[:300]
    await _produce(service, _payloads(batch))
    wait_for(lambda: service.get("/status")["conversations"] == 300, 240, "not all 300 stored")
    _counts_consistent(service, 300)
    assignments = await _read_all(service, "KURA_KAFKA_TOPIC_ASSIGNMENTS", 300)
    placed = {json.loads(v)["chat_id"] for v in assignments}
    assert placed == {c.chat_id for c in batch}


async def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    await _produce(service, _payloads(sample[:600]))
    wait_for(lambda: service.get("/status")["conversations"] >= 60, 240, "stream did not start")
    service.kill()
    # Redeliver some on purpose too: the same 100 again.
    await _produce(service, _payloads(sample[:100]))
    service.start()
    wait_for(
        lambda: service.get("/status")["conversations"] == 600, 300, "not all 600 after restart"
    )
    await asyncio.sleep(3)  # anything counted twice would show up now
    _counts_consistent(service, 600)
    assert service.get("/status")["duplicates"] >= 100  # the replayed 100, recognised


async def test_poison_messages_go_to_the_dlq_with_reasons(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    good = _payloads(sample[:40])
    poison: list[tuple[str | None, bytes]] = [
        ("bad-json", b"{not json"),
        ("bad-schema", json.dumps({"chat_id": "x", "messages": []}).encode()),
        ("oversized", b'{"chat_id": "big", "pad": "' + b"x" * 400_000 + b'"}'),
        (None, b""),
    ]
    mixed = good[:20] + poison + good[20:]
    await _produce(service, mixed)
    wait_for(
        lambda: service.get("/status")["conversations"] == 40, 240, "good messages not all stored"
    )
    dead = [json.loads(v) for v in await _read_all(service, "KURA_KAFKA_TOPIC_DLQ", 4)]
    assert len(dead) == 4
    reasons = " | ".join(d["reason"] for d in dead)
    assert "not JSON" in reasons
    assert "invalid conversation" in reasons
    assert "oversized" in reasons
    assert "empty" in reasons
    assert all(d["stage"] == "parse" for d in dead)
    big = next(d for d in dead if d["key"] == "oversized")
    assert big["size"] > 400_000
    assert big["source"].startswith(service.env["KURA_KAFKA_TOPIC_CONVERSATIONS"] + "/")
    assert service.get("/status")["dlq"] == 4


async def test_recompute_gives_hierarchy_and_map_and_keeps_ids(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    await _produce(service, _payloads(sample[:400]))
    wait_for(lambda: service.get("/status")["conversations"] == 400, 240, "not all stored")
    assert service.recompute() == "completed"
    before = {c["id"]: c for c in service.get("/clusters")}
    base_before = {i for i, c in before.items() if c["level"] == 0}
    assert len(base_before) > 3, f"only {len(base_before)} base clusters"
    assert any(c["level"] > 0 for c in before.values()), "no hierarchy"
    assert all(c["parent_id"] in before for c in before.values() if c["level"] == 0)
    # Nothing new arrived: a second recompute must keep every base cluster's id.
    assert service.recompute() == "completed"
    after = {c["id"]: c for c in service.get("/clusters")}
    base_after = {i for i, c in after.items() if c["level"] == 0}
    assert base_after == base_before
    assert all(after[i]["count"] == before[i]["count"] for i in base_after)
    positions = {(round(c["x"], 3), round(c["y"], 3)) for c in after.values() if c["level"] == 0}
    assert len(positions) > 1, "map not drawn"
    _counts_consistent(service, 400)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_minilm_embeds_in_a_worker_that_never_outlives_the_service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None, sample: list[Conversation]
) -> None:
    svc = ServiceUnderTest(bootstrap=kafka_bootstrap, workdir=tmp_path, embedder="minilm")
    try:
        svc.start()
        assert svc.proc is not None
        workers = _children(svc.proc.pid)
        assert workers, "serve with minilm started no embedding worker"
        await _produce(svc, _payloads(sample[:200]))
        wait_for(lambda: svc.get("/status")["conversations"] == 200, 240, "not all 200 stored")
        _counts_consistent(svc, 200)
        svc.kill()
        wait_for(
            lambda: not any(Path(f"/proc/{w}").exists() for w in workers),
            10,
            "the embedding worker outlived a SIGKILLed service",
        )
        svc.start()  # the same store, a new worker: nothing lost, nothing counted twice
        await _produce(svc, _payloads(sample[150:250]))
        wait_for(lambda: svc.get("/status")["conversations"] == 250, 240, "not all 250 stored")
        _counts_consistent(svc, 250)
    finally:
        svc.stop()


async def test_a_recompute_requested_before_a_crash_runs_after_the_restart(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    await _produce(service, _payloads(sample[:300]))
    wait_for(lambda: service.get("/status")["conversations"] == 300, 240, "not all stored")
    request_id = service.post("/recompute")["request_id"]
    wait_for(
        lambda: service.recompute_state(request_id) in ("running", "completed", "failed"),
        60,
        "the recompute command was not picked up",
    )
    service.kill()
    events = [
        json.loads(v)
        for v in await _read_all(service, "KURA_KAFKA_TOPIC_CLUSTER_EVENTS", 10**6, timeout_s=5)
    ]
    finished = {e["request_id"] for e in events if e["kind"] == "recompute_completed"}
    assert request_id not in finished, "it finished before the kill: nothing was interrupted"
    service.start()
    wait_for(
        lambda: service.recompute_state(request_id) in ("completed", "failed"),
        300,
        "the interrupted recompute did not run again after the restart",
    )
    assert service.recompute_state(request_id) == "completed"
    assert any(c["level"] > 0 for c in service.get("/clusters")), "no hierarchy"
    _counts_consistent(service, 300)


async def test_the_cli_reads_and_drives_the_running_service(
    service: ServiceUnderTest, sample: list[Conversation], tmp_path: Path
) -> None:
    service.start()
    await _produce(service, _payloads(sample[:200]))
    wait_for(lambda: service.get("/status")["conversations"] == 200, 240, "not all stored")
    recompute = service.cli("recompute")
    assert recompute.returncode == 0, recompute.stderr
    assert "completed" in recompute.stdout
    status = json.loads(service.cli("status", "--json").stdout)
    assert status["conversations"] == 200
    assert status["lag"] == 0
    assert {"conversations", "clusters", "outliers", "dlq", "lag"} <= set(status)
    clusters = json.loads(service.cli("clusters", "--json").stdout)
    fields = {"id", "name", "description", "count", "parent_id", "level", "x", "y"}
    assert clusters
    assert all(fields <= set(c) for c in clusters)
    assert sum(c["count"] for c in clusters if c["level"] == 0) + status["outliers"] == 200
    exported = service.cli("export", "out")
    assert exported.returncode == 0, exported.stderr
    rows = (service.workdir / "exports" / "out" / "assignments.jsonl").read_text().splitlines()
    assert len(rows) == 200
    service.stop()
    down = service.cli("status", "--json")
    assert down.returncode == 3
    assert "no kura-stream service answers" in down.stderr


async def test_sigterm_mid_stream_finishes_and_commits_what_is_in_flight(
    service: ServiceUnderTest, sample: list[Conversation]
) -> None:
    service.start()
    await _produce(service, _payloads(sample[:600]))
    wait_for(lambda: service.get("/status")["conversations"] >= 60, 240, "stream did not start")
    assert service.stop() == 0
    logs = "".join(p.read_text() for p in service.workdir.glob("serve-*.log"))
    assert "stopped: in-flight batches finished and committed" in logs
    service.start()
    wait_for(
        lambda: service.get("/status")["conversations"] == 600, 300, "not all 600 after restart"
    )
    _counts_consistent(service, 600)
    # What was stored before the stop was committed: nothing comes again.
    assert service.get("/status")["duplicates"] == 0
