"""Kafka client helpers against the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kura_stream.adapters.kafka_client import consumer_lag, ensure_topics, start_group_at_end

pytestmark = pytest.mark.kafka


async def test_a_new_group_starts_at_the_log_end_and_misses_nothing_sent_after(
    kafka_bootstrap: str,
) -> None:
    topic, group = f"cmd-{uuid.uuid4().hex[:8]}", f"grp-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"old, before the group existed")
        assert await start_group_at_end(kafka_bootstrap, group, topic) is True
        assert await start_group_at_end(kafka_bootstrap, group, topic) is False  # has offsets
        # Sent before the group's consumer has even started: it must still get it.
        await producer.send_and_wait(topic, b"new")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        for _ in range(20):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in records if r.value is not None)
            if got:
                break
        assert got == [b"new"]
        assert await consumer.committed(TopicPartition(topic, 0)) == 1
    finally:
        await consumer.stop()


async def test_consumer_lag_counts_what_the_group_has_not_committed(kafka_bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"grp-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic], 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(6):
            await producer.send_and_wait(topic, b"x", partition=i % 2)
    finally:
        await producer.stop()
    assert await consumer_lag(kafka_bootstrap, group, topic) == 6  # never committed: all
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 3})
    finally:
        await consumer.stop()
    assert await consumer_lag(kafka_bootstrap, group, topic) == 1
