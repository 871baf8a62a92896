"""Ingest: raw Kafka records -> scrubbed, summarised, embedded conversations, or dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from pydantic import ValidationError

from kura_stream.kura_ui_files import stored_messages
from kura_stream.privacy import scrub_conversation
from kura_stream.protocols import Embedder
from kura_stream.types import Conversation, DeadLetter, EmbeddedConversation, Summary

logger = logging.getLogger(__name__)


class BadRecord(ValueError):
    """A record that can never be processed; it goes to the dead-letter topic with the reason."""


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as consumed.

    Attributes:
        value: The message bytes (None for a tombstone).
        key: The message key, if any.
        timestamp_ms: The record's Kafka timestamp.
        source: topic/partition/offset, for dead letters.
    """

    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    source: str | None = None


@dataclass
class IngestResult:
    """What a batch became: embedded conversations to assign, and dead letters."""

    embedded: list[EmbeddedConversation] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def parse_conversation(value: bytes | None, *, max_bytes: int) -> Conversation:
    """Parse one message of the conversations topic.

    Raises:
        BadRecord: empty, oversized, not JSON, or not a valid Conversation (with the reason).
    """
    if not value:
        raise BadRecord("empty message")
    if len(value) > max_bytes:
        raise BadRecord(f"oversized: {len(value)} bytes > limit {max_bytes}")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRecord(f"not JSON: {err}") from err
    if not isinstance(data, dict):
        raise BadRecord(f"expected a JSON object, got {type(data).__name__}")
    try:
        return Conversation.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in err.errors()[:5]
        )
        raise BadRecord(f"invalid conversation: {problems}") from err


def _received_at(record: RawRecord) -> datetime:
    if record.timestamp_ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)


SummariseOne = Callable[[Conversation], Awaitable[Summary]]
"""Summarise one conversation; raises BadRecord (or the summariser's own permanent error)."""

SummariseMany = Callable[[Sequence[Conversation]], Awaitable[list[Summary]]]
"""Summarise a batch at once (the offline summariser: one embedder call); never fails."""


async def ingest(
    records: Sequence[RawRecord],
    *,
    summarise: SummariseOne,
    embedder: Embedder,
    max_bytes: int,
    concurrency: int,
    permanent_errors: tuple[type[Exception], ...] = (BadRecord,),
    summarise_batch: SummariseMany | None = None,
) -> IngestResult:
    """Parse, scrub, summarise and embed a batch of raw records.

    A record that can never succeed (malformed, oversized, a permanent summary failure)
    becomes a dead letter with its reason; the rest go on. A transient failure (endpoint down)
    propagates, so the consumer does not commit and the batch is redelivered.

    Args:
        records: The batch, in topic order.
        summarise: Summarises one (already scrubbed) conversation.
        embedder: Embeds summary texts.
        max_bytes: Larger messages are dead-lettered as oversized.
        concurrency: Summaries in flight at once.
        permanent_errors: Exceptions from summarise that mean "this record will never work".
        summarise_batch: When given, used instead of summarise for the whole batch.

    Returns:
        Embedded conversations (input order, duplicates of a chat_id within the batch
        collapsed to the last one) and dead letters.
    """
    result = IngestResult()
    parsed: dict[str, tuple[Conversation, RawRecord]] = {}
    for record in records:
        try:
            conversation = parse_conversation(record.value, max_bytes=max_bytes)
        except BadRecord as err:
            result.dead.append(_dead(record, str(err), "parse"))
            continue
        parsed.pop(conversation.chat_id, None)
        parsed[conversation.chat_id] = (scrub_conversation(conversation, metadata_keys=()), record)

    semaphore = asyncio.Semaphore(concurrency)

    async def one(conversation: Conversation) -> Summary | Exception:
        async with semaphore:
            try:
                return await summarise(conversation)
            except permanent_errors as err:
                return err

    outcomes: Sequence[Summary | Exception]
    if summarise_batch is not None:
        outcomes = await summarise_batch([c for c, _ in parsed.values()])
    else:
        outcomes = await asyncio.gather(*(one(c) for c, _ in parsed.values()))
    done: list[tuple[Summary, Conversation, RawRecord]] = []
    for (conversation, record), outcome in zip(parsed.values(), outcomes, strict=True):
        if isinstance(outcome, Exception):
            result.dead.append(_dead(record, f"summary failed: {outcome}", "summarise"))
        else:
            done.append((outcome, conversation, record))
    if not done:
        return result
    texts = [summary.embedding_text() for summary, _, _ in done]
    vectors = await asyncio.to_thread(embedder.embed, texts)
    for (summary, conversation, record), vector in zip(done, vectors, strict=True):
        if not np.all(np.isfinite(vector)):
            result.dead.append(_dead(record, "embedding is not finite", "embed"))
            continue
        result.embedded.append(
            EmbeddedConversation(
                chat_id=conversation.chat_id,
                summary=summary,
                vector=tuple(np.asarray(vector, dtype=np.float32).tolist()),
                embedder=embedder.name,
                created_at=conversation.created_at,
                received_at=_received_at(record),
                **stored_messages(conversation),
            )
        )
    return result


DEAD_LETTER_KEEP_BYTES = 256 * 1024
"""An oversized original is cut to this in its dead letter (base64 must fit the DLQ topic);
the whole record stays in the source topic at `source`."""


def _dead(record: RawRecord, reason: str, stage: str) -> DeadLetter:
    logger.warning("dead letter at %s (%s): %s", stage, record.source, reason)
    key = record.key.decode("utf-8", "replace") if record.key else None
    value = record.value or b""
    return DeadLetter(
        original=value[:DEAD_LETTER_KEEP_BYTES],
        reason=reason,
        stage=stage,
        key=key,
        size=len(value),
        truncated=len(value) > DEAD_LETTER_KEEP_BYTES,
        source=record.source,
    )
