"""Consumers see raw records whatever the bytes, and stop retrying a batch that keeps failing."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from consumers._raw import RetryGuard, keep_raw_body, records_of, tolerant_parser
from kura_stream.errors import EndpointUnavailableError


async def test_a_poison_body_reaches_the_handler_as_raw_bytes() -> None:
    broker = KafkaBroker("127.0.0.1:1", logger=None)
    seen: list[bytes] = []

    @broker.subscriber(
        "t",
        batch=True,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=tolerant_parser,
        decoder=keep_raw_body,
    )
    async def handle(msg: KafkaMessage) -> None:
        seen.extend(r.value or b"" for r in records_of(msg))

    poison = b"[" * 50_000 + b"]" * 50_000
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(poison, topic="t")
        await test_broker.publish(b'{"chat_id": 1e999999}', topic="t")
    assert seen == [poison, b'{"chat_id": 1e999999}']


def _records(offset: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord("t", 0, offset + i, 0, 0, None, b"x", None, 1, 0, ()) for i in range(3)]


async def test_the_guard_gives_up_on_a_batch_after_max_tries_and_forgets_on_success() -> None:
    guard = RetryGuard("test", max_tries=3, pause_s=0.0)
    batch = _records(10)
    err = RecursionError("deep")
    assert [await guard.failed(batch, err) for _ in range(3)] == [False, False, True]
    guard.succeeded(batch)
    assert await guard.failed(batch, err) is False
    assert "failed 3 times" in guard.give_up_reason(err)


async def test_transient_failures_never_count_and_back_off() -> None:
    guard = RetryGuard("test", max_tries=2, pause_s=0.001)
    batch = _records(0)
    started = asyncio.get_running_loop().time()
    outcomes = [await guard.failed(batch, EndpointUnavailableError("refused")) for _ in range(5)]
    assert outcomes == [False] * 5
    assert guard.transient_streak == 5
    assert asyncio.get_running_loop().time() - started >= 0.001 * (2 + 4 + 8 + 16 + 32)
    guard.succeeded(batch)
    assert guard.transient_streak == 0


def test_settling_the_heap_freezes_the_start_up_heap_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import consumers._raw as raw

    frozen: list[int] = []
    monkeypatch.setattr(raw, "_heap_settled", False)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    before = gc.get_threshold()
    try:
        raw.settle_heap()
        raw.settle_heap()
        assert frozen == [1]
        assert gc.get_threshold() == (raw.GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)
