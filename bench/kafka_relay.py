"""The Kafka transport ceiling: how fast Python can move messages through the pipeline's hops.

The service's conversations pass two consumer hops (conversations -> embedded -> assignments),
each a consume, a produce per message and a commit after the broker's acknowledgement. This
relays the same messages through two hops that do nothing else, with aiokafka directly (no
FastStream, no parsing) in one process, as the service runs. No pipeline built on these
clients can beat it; the throughput benchmark prints it next to the pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kura_stream.adapters.kafka_client import PRODUCE_BATCH_BYTES, ensure_topics

BATCH_RECORDS = 512
"""Records per poll, as the service's consumers (kafka.batch_max_records)."""


async def _hop(bootstrap: str, source: str, target: str, n: int) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"relay-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=PRODUCE_BATCH_BYTES,
    )
    await consumer.start()
    await producer.start()
    try:
        moved = 0
        while moved < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
            futures = [
                await producer.send(target, r.value, key=r.key)
                for records in batches.values()
                for r in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
            moved += len(futures)
    finally:
        await producer.stop()
        await consumer.stop()


async def relay_rate(
    bootstrap: str, values: Sequence[tuple[bytes, bytes]], *, partitions: int
) -> float:
    """Messages/s through two relay hops, from the first produce to the last relayed message.

    Args:
        bootstrap: The broker.
        values: (key, value) messages, e.g. the benchmark's conversations as JSON.
        partitions: Partitions of the first and last topic (the service's kafka.partitions).

    Returns:
        len(values) divided by the seconds from the first produce until the second hop
        has relayed (and committed) the last message.
    """
    run = uuid.uuid4().hex[:8]
    topics = [f"relay-{run}-{i}" for i in range(3)]
    # As the service's: conversations and assignments partitioned, embedded one partition.
    await ensure_topics(bootstrap, [topics[0], topics[2]], partitions)
    await ensure_topics(bootstrap, [topics[1]], 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = len(values)
    hops = [asyncio.create_task(_hop(bootstrap, a, b, n)) for a, b in itertools.pairwise(topics)]
    await asyncio.sleep(2)  # both hops joined their groups before the clock starts
    started = time.perf_counter()
    try:
        futures = [await producer.send(topics[0], v, key=k) for k, v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    await asyncio.gather(*hops)
    return n / (time.perf_counter() - started)
