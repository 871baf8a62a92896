"""What every consumer shares to survive bad records: raw bodies, and a bound on retries.

FastStream would decode each body as JSON before our handler runs, and only tolerates
`JSONDecodeError` and `UnicodeDecodeError` there: a message nested 1,000 levels deep raised
`RecursionError` outside any handler, and with NACK_ON_ERROR the partition was redelivered
forever. The handlers here take raw bytes and parse them themselves, where every failure
becomes a dead letter; headers that are not UTF-8 are dropped rather than fatal.

A batch whose handler keeps failing is retried a bounded number of times; then the consumer
takes it apart and dead-letters only the records that fail alone. Transient failures (an
endpoint, the store or the broker away) are never counted: they wait with a growing pause.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaRouter
from faststream.kafka.message import KafkaMessage

from kura_stream.adapters.kafka_stream import KAFKA_ERRORS, KafkaRecord
from kura_stream.adapters.stores import StoreError
from kura_stream.errors import TransientError

logger = logging.getLogger(__name__)

MAX_TRIES = 5
"""Failures of one batch (same first record) before its records are tried one by one."""
TRANSIENT_PAUSE_MAX_S = 60.0
"""Longest pause between redeliveries while something the batch needs is away."""
_WARN_EVERY_S = 30.0

GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation (CPython's default: 700).
A batch of 512 conversations allocates hundreds of thousands of short-lived objects, freed by
reference counting; at 700 the collector ran hundreds of times per batch for nothing."""
_heap_settled = False


def settle_heap() -> None:
    """Once per process, before consuming: freeze what start-up built; collect less often.

    Start-up leaves about 300,000 long-lived objects (name and place lists, the language
    model's tables, the tokenizer's vocabulary, FastStream and aiokafka), and every full
    collection walked all of them again: 0.1-0.3 s each, a third of the summarise + assign
    CPU time in the throughput benchmark (issue #16). `gc.freeze` moves them out of the
    collector's sight for good; objects made later are collected as before. Nothing is
    collected first: that walk costs 0.3 s, for garbage start-up barely leaves. `serve` calls
    it once the service is built, before the broker starts.
    """
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


async def keep_raw_body(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decoder: the body as consumed (bytes, or a list of bytes for a batch)."""
    return msg.body


async def tolerant_parser(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream parser: as FastStream's, but a header that is not UTF-8 is dropped."""
    try:
        return await original(msg)
    except UnicodeDecodeError:
        if isinstance(msg, tuple):
            return await original(tuple(dataclasses.replace(r, headers=()) for r in msg))
        return await original(dataclasses.replace(msg, headers=()))


def raw_router() -> KafkaRouter:
    """A router whose subscribers hand raw records to their handlers (see the module doc)."""
    return KafkaRouter(parser=tolerant_parser, decoder=keep_raw_body)


def records_of(msg: KafkaMessage) -> tuple[KafkaRecord, ...]:
    """The raw records behind a FastStream message, one or a batch."""
    raw = msg.raw_message
    if isinstance(raw, list):  # FastStream's TestKafkaBroker hands a batch over as a list
        return tuple(raw)
    return raw if isinstance(raw, tuple) else (raw,)


def is_transient(err: BaseException) -> bool:
    """Whether a failure is of something outside the records (retry later, never DLQ)."""
    return isinstance(err, (TransientError, StoreError, OSError, TimeoutError, *KAFKA_ERRORS))


RecordKey = tuple[str, int, int]


class RetryGuard:
    """Counts the failures of each batch, pauses between them, and says when to give up.

    A batch is known by its first record (topic, partition, offset): a redelivered batch
    starts there again, however many records follow it.
    """

    def __init__(self, stage: str, *, max_tries: int = MAX_TRIES, pause_s: float = 0.5) -> None:
        """A guard for one consumer; pause_s is the first pause, doubled per failure."""
        self.stage = stage
        self.max_tries = max_tries
        self.pause_s = pause_s
        self.failures: dict[RecordKey, int] = {}
        self.transient_streak = 0
        self._last_warning = 0.0
        self._quiet = 0

    @staticmethod
    def key(records: Sequence[KafkaRecord]) -> RecordKey:
        """The batch's first record."""
        first = records[0]
        return first.topic, first.partition, first.offset

    async def failed(self, records: Sequence[KafkaRecord], err: Exception) -> bool:
        """Note a failure and pause. True: take the batch apart now; False: raise, redeliver."""
        if is_transient(err):
            self.transient_streak += 1
            pause = min(TRANSIENT_PAUSE_MAX_S, self.pause_s * 2.0**self.transient_streak)
            self._warn_throttled(f"{self.stage}: {_reason(err)}; redelivering in {pause:.0f}s")
            await asyncio.sleep(pause)
            return False
        key = self.key(records)
        tries = self.failures.get(key, 0) + 1
        if len(self.failures) > 1000:
            self.failures.clear()
        self.failures[key] = tries
        if tries >= self.max_tries:
            logger.error(
                "%s: batch at %s/%d/%d failed %d times (%s); trying its records one by one",
                self.stage, *key, tries, _reason(err),
            )  # fmt: skip
            return True
        logger.warning(
            "%s: batch at %s/%d/%d failed (%d/%d): %s",
            self.stage, *key, tries, self.max_tries, _reason(err), exc_info=err,
        )  # fmt: skip
        await asyncio.sleep(self.pause_s * 2.0 ** (tries - 1))
        return False

    def succeeded(self, records: Sequence[KafkaRecord]) -> None:
        """Forget the batch's failures; a transient outage is over."""
        if records:
            self.failures.pop(self.key(records), None)
        if self.transient_streak:
            logger.info("%s: going again after %d redeliveries", self.stage, self.transient_streak)
        self.transient_streak = 0

    def give_up_reason(self, err: BaseException) -> str:
        """The dead letter's reason for a record that failed alone after the batch's tries."""
        return f"failed {self.max_tries} times in a batch, then alone: {_reason(err)}"

    def _warn_throttled(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            suffix = f" ({self._quiet} similar since the last warning)" if self._quiet else ""
            logger.warning("%s%s", message, suffix)
            self._last_warning = now
            self._quiet = 0
        else:
            self._quiet += 1


def _reason(err: BaseException) -> str:
    text = getattr(err, "reason", None) or str(err)
    line = " ".join(str(text).split())[:300]
    return f"{type(err).__name__}: {line}" if line else type(err).__name__
