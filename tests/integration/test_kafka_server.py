"""Real-broker tests: aiokafka groups, commits and offsets, and the broker's own management."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TypeAlias

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from kura_stream.adapters.kafka_client import describe_cluster, ensure_topics
from kura_stream.adapters.kafka_server import LocalKafkaServer
from kura_stream.adapters.processes import ServiceError
from tests.fixtures_kafka import local_broker_config

pytestmark = pytest.mark.kafka

PARTITIONS = 4
Rec: TypeAlias = ConsumerRecord[bytes, bytes]


async def _produce(bootstrap: str, topic: str, n: int) -> dict[int, list[int]]:
    """Send n keyed messages (value i, key key-(i % 50)); returns offsets written per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=str(i).encode(), key=f"key-{i % 50}".encode())
            for i in range(n)
        ]
        written: dict[int, list[int]] = {}
        for meta in await asyncio.gather(*futures):
            written.setdefault(meta.partition, []).append(meta.offset)
        return written
    finally:
        await producer.stop()


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=500,
    )


async def _drain(consumer: AIOKafkaConsumer, want: int, *, settle_s: float = 1.0) -> list[Rec]:
    """Read until `want` records arrived, then keep polling settle_s to catch any extra."""
    got: list[Rec] = []
    async with asyncio.timeout(60):
        while len(got) < want:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += records
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    while loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got += records
    return got


@pytest.fixture
async def topic4(kafka_bootstrap: str, kafka_topic: str) -> str:
    created = await ensure_topics(kafka_bootstrap, [kafka_topic], PARTITIONS)
    assert created == [kafka_topic]
    return kafka_topic


async def test_ensure_topics_is_idempotent(kafka_bootstrap: str, topic4: str) -> None:
    assert await ensure_topics(kafka_bootstrap, [topic4, topic4], PARTITIONS) == []
    end = await _end_offsets(kafka_bootstrap, topic4)
    assert sorted(tp.partition for tp in end) == list(range(PARTITIONS))


async def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        result: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return result
    finally:
        await consumer.stop()


async def _settled_split(
    first: AIOKafkaConsumer, second: AIOKafkaConsumer
) -> tuple[frozenset[TopicPartition], frozenset[TopicPartition]]:
    """Wait until both members hold disjoint, complete, unchanging shares of the partitions.

    Reading before that would hand out records from a partition about to move to the other
    member, which (with nothing committed yet) would read it again from the start. Mid-way
    the first member may still hold all partitions while the second already got its share.
    """
    steady, last = 0, None
    for _ in range(300):
        split = (frozenset(first.assignment()), frozenset(second.assignment()))
        a, b = split
        complete = a and b and not a & b and len(a | b) == PARTITIONS
        steady = steady + 1 if complete and split == last else 0
        if steady >= 5:
            return split
        last = split
        await asyncio.sleep(0.1)
    pytest.fail(f"the group did not settle on two members within 30 s: {last}")


async def test_two_consumers_in_a_group_split_partitions_and_read_exactly_n(
    kafka_bootstrap: str, topic4: str
) -> None:
    n = 400
    written = await _produce(kafka_bootstrap, topic4, n)
    assert sorted(written) == list(range(PARTITIONS)), "50 keys should reach all 4 partitions"

    group = f"g-{uuid.uuid4().hex[:8]}"
    first, second = (
        _consumer(kafka_bootstrap, topic4, group),
        _consumer(kafka_bootstrap, topic4, group),
    )
    await first.start()
    await second.start()
    try:
        a, b = await _settled_split(first, second)
        assert not a & b
        assert {tp.partition for tp in a | b} == set(range(PARTITIONS))

        got_first, got_second = await asyncio.gather(
            _drain(first, sum(len(written[tp.partition]) for tp in a)),
            _drain(second, sum(len(written[tp.partition]) for tp in b)),
        )
        # No rebalance moved a partition while reading (that would re-deliver records).
        assert (first.assignment(), second.assignment()) == (a, b)
    finally:
        await first.stop()
        await second.stop()

    assert got_first
    assert got_second
    assert {r.partition for r in got_first} == {tp.partition for tp in a}
    assert {r.partition for r in got_second} == {tp.partition for tp in b}
    values = [int(r.value) for r in got_first + got_second if r.value is not None]
    assert len(values) == n
    assert sorted(values) == list(range(n))
    # Kafka's default partitioner keeps one key on one partition.
    partition_of_key: dict[bytes | None, set[int]] = {}
    for r in got_first + got_second:
        partition_of_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in partition_of_key.values())


async def test_a_new_consumer_resumes_exactly_at_the_committed_offsets(
    kafka_bootstrap: str, topic4: str
) -> None:
    n, processed_before_crash = 200, 70
    await _produce(kafka_bootstrap, topic4, n)
    group = f"g-{uuid.uuid4().hex[:8]}"

    first = _consumer(kafka_bootstrap, topic4, group)
    await first.start()
    processed: list[Rec] = []
    try:
        async with asyncio.timeout(60):
            while len(processed) < processed_before_crash:
                batch = await first.getmany(timeout_ms=500, max_records=25)
                for records in batch.values():
                    processed += records
        # Process (and commit) only the first 70: the rest of the last batch was fetched
        # but not processed, and must be delivered again.
        processed = _per_partition_prefix(processed, processed_before_crash)
        commits: dict[TopicPartition, int] = {}
        for r in processed:
            commits[TopicPartition(topic4, r.partition)] = r.offset + 1
        await first.commit(commits)
        assert {tp: await first.committed(tp) for tp in commits} == commits
    finally:
        await first.stop()  # auto-commit is off: stopping commits nothing more

    second = _consumer(kafka_bootstrap, topic4, group)
    await second.start()
    try:
        rest = await _drain(second, n - processed_before_crash)
    finally:
        await second.stop()

    for tp, offset in commits.items():
        offsets = [r.offset for r in rest if r.partition == tp.partition]
        assert not offsets or min(offsets) == offset, (
            f"{tp} resumed at {min(offsets)}, not {offset}"
        )
    seen = {(r.partition, r.offset) for r in processed}
    again = {(r.partition, r.offset) for r in rest}
    assert not seen & again, "records before the commit point were read again"
    assert len(rest) == len(again) == n - processed_before_crash
    values = sorted(int(r.value) for r in processed + rest if r.value is not None)
    assert values == list(range(n)), "a record was skipped or duplicated"


def _per_partition_prefix(records: list[Rec], k: int) -> list[Rec]:
    """k of the records such that each partition keeps a prefix (what was processed in order)."""
    by_partition: dict[int, list[Rec]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition.setdefault(r.partition, []).append(r)
    kept: list[Rec] = []
    while len(kept) < k:
        for part in sorted(by_partition):
            if by_partition[part] and len(kept) < k:
                kept.append(by_partition[part].pop(0))
    return kept


async def test_end_offsets_match_what_was_produced(kafka_bootstrap: str, topic4: str) -> None:
    per_partition = {0: 3, 1: 0, 2: 11, 3: 5}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in per_partition.items():
            for i in range(count):
                await producer.send_and_wait(
                    topic4, f"{partition}-{i}".encode(), partition=partition
                )
    finally:
        await producer.stop()
    keyed = await _produce(kafka_bootstrap, topic4, 60)

    end = await _end_offsets(kafka_bootstrap, topic4)
    expected = {
        TopicPartition(topic4, p): per_partition[p] + len(keyed.get(p, [])) for p in per_partition
    }
    assert end == expected
    for p, offsets in keyed.items():
        assert max(offsets) + 1 == expected[TopicPartition(topic4, p)]


# --- the broker's management -------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kura-stream"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "KURA_KAFKA_BOOTSTRAP"},
    )


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_start_when_running_is_harmless_and_status_reports_it(
    kafka_broker: LocalKafkaServer | None, kafka_bootstrap: str
) -> None:
    if kafka_broker is None:
        pytest.skip("KURA_KAFKA_BOOTSTRAP names an external broker")
    pid = kafka_broker.process.pid()
    assert pid is not None

    again = kafka_broker.start(timeout_s=30)
    assert again.pid == pid
    assert kafka_broker.process.pid() == pid

    status = kafka_broker.status()
    assert (status.running, status.ready, status.pid) == (True, True, pid)
    assert status.bootstrap == kafka_bootstrap == f"127.0.0.1:{kafka_broker.config.port}"

    port = str(kafka_broker.config.port)
    data_dir = str(kafka_broker.config.data_dir)
    shown = _cli("broker", "status", "--json", "--port", port, "--data-dir", data_dir)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == status.to_dict()
    started = _cli("broker", "start", "--port", port, "--data-dir", data_dir)
    assert started.returncode == 0, started.stderr
    assert kafka_bootstrap in started.stdout
    assert f"PID {pid}" in started.stdout


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    broker = LocalKafkaServer(local_broker_config(tmp_path / "kafka"))
    status = broker.start()
    pid = status.pid
    assert pid is not None
    try:
        assert status.running
        assert status.ready
        assert not _gone(pid)
        answer = asyncio.run(describe_cluster(broker.bootstrap))
        assert answer is not None
        assert answer["brokers"] == [
            {"node_id": 1, "host": "127.0.0.1", "port": broker.config.port, "rack": None}
        ]
    finally:
        stopped = broker.stop()
    assert stopped is True
    assert _gone(pid)
    assert broker.process.pid() is None
    assert not broker.process.pid_file.exists()
    assert broker.stop() is False
    assert broker.status().running is False

    port = str(broker.config.port)
    shown = _cli("broker", "status", "--port", port, "--data-dir", str(tmp_path / "kafka"))
    assert shown.returncode == 1
    assert "not running" in shown.stdout


def test_start_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    config = local_broker_config(tmp_path / "kafka")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.port))
        squatter.listen()
        broker = LocalKafkaServer(config)
        with pytest.raises(ServiceError, match="already in use"):
            broker.start(timeout_s=20)
    assert broker.process.pid() is None
