"""Replay a conversation file into the conversations topic, optionally at a fixed rate."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from kura_stream.adapters.kafka_client import PRODUCE_BATCH_BYTES, aiokafka_kwargs, ensure_topics
from kura_stream.loaders import LoadError, iter_conversations
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)


async def replay(
    settings: Settings, path: Path, *, rate: float = 0.0, limit: int = 0, fmt: str = "auto"
) -> tuple[int, int]:
    """Produce every good conversation of a file, keyed by chat_id.

    Args:
        settings: Where the broker and the topic are.
        path: The file (any format the loaders read).
        rate: Messages per second; 0 sends as fast as the broker takes them.
        limit: Stop after this many conversations; 0 sends all.
        fmt: The file's format, or "auto".

    Returns:
        (conversations sent, records the loader refused).
    """
    k = settings.kafka
    kwargs = aiokafka_kwargs(k)
    await ensure_topics(k.bootstrap, [k.topic_conversations], k.partitions, client_kwargs=kwargs)
    producer = AIOKafkaProducer(
        **kwargs,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=PRODUCE_BATCH_BYTES,
    )
    sent = refused = 0
    started = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    try:
        await producer.start()  # inside the try: a failed start must close the client too
        for item in iter_conversations(path, fmt):  # type: ignore[arg-type]
            if isinstance(item, LoadError):
                refused += 1
                logger.warning("refused %s:%s: %s", item.source, item.line_or_index, item.reason)
                continue
            value = item.model_dump_json().encode()
            pending.append(
                await producer.send(k.topic_conversations, value, key=item.chat_id.encode())
            )
            sent += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if limit and sent >= limit:
                break
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, refused
