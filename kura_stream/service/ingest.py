"""Ingest: raw Kafka records -> scrubbed, summarised, embedded conversations, or dead letters."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

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
    except RecursionError as err:
        raise BadRecord("not readable JSON: nested too deeply") from err
    except ValueError as err:  # an integer of more than 4,300 digits, and the like
        raise BadRecord(f"not readable JSON: {err}") from err
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
    except RecursionError as err:
        raise BadRecord("invalid conversation: nested too deeply") from err


def content_hash(conversation: Conversation) -> str:
    """A digest of a conversation's messages (roles and texts, in order), to tell versions apart."""
    digest = hashlib.blake2b(digest_size=16)
    for message in conversation.messages:
        digest.update(message.role.encode())
        digest.update(b"\x00")
        digest.update(message.content.encode("utf-8", "surrogatepass"))
        digest.update(b"\x01")
    return digest.hexdigest()


def parse_batch(
    records: Sequence[RawRecord], *, max_bytes: int, metadata_keys: Collection[str] = ()
) -> tuple[list[tuple[Conversation, RawRecord]], list[DeadLetter]]:
    """Parse and scrub a batch: the good conversations in topic order, and the dead letters.

    CPU-bound (JSON, validation, the scrubbers' patterns over every message): `ingest` runs
    it in a worker thread so the event loop keeps heartbeats, commits and the HTTP API going.
    A chat_id sent twice stays twice: the assigner, which knows what is stored, counts the
    second as a duplicate or dead-letters it as a conflicting one.
    """
    parsed: list[tuple[Conversation, RawRecord]] = []
    dead: list[DeadLetter] = []
    for record in records:
        try:
            conversation = parse_conversation(record.value, max_bytes=max_bytes)
        except BadRecord as err:
            dead.append(_dead(record, str(err), "parse"))
            continue
        parsed.append((scrub_conversation(conversation, metadata_keys=metadata_keys), record))
    return parsed, dead


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
    concurrency: int | asyncio.Semaphore,
    permanent_errors: tuple[type[Exception], ...] = (BadRecord,),
    summarise_batch: SummariseMany | None = None,
    metadata_keys: Collection[str] = (),
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
        concurrency: Summaries in flight at once, or a semaphore shared with other batches
            (the service's consumers share one, so the bound is the process's).
        permanent_errors: Exceptions from summarise that mean "this record will never work".
        summarise_batch: When given, used instead of summarise for the whole batch.
        metadata_keys: The metadata keys kept (PrivacySettings.metadata_keys); the others
            are dropped before any summariser sees the conversation.

    Returns:
        Embedded conversations (input order; a chat_id sent twice is there twice, for the
        assigner to judge) and dead letters.
    """
    result = IngestResult()
    parsed, result.dead = await asyncio.to_thread(
        parse_batch, records, max_bytes=max_bytes, metadata_keys=metadata_keys
    )
    conversations = [c for c, _ in parsed]
    outcomes: Sequence[Summary | Exception]
    if summarise_batch is not None:
        outcomes = await summarise_batch(conversations)
    else:
        outcomes = await _summarise_each(
            conversations, summarise, concurrency=concurrency, permanent_errors=permanent_errors
        )
    done: list[tuple[Summary, Conversation, RawRecord]] = []
    for (conversation, record), outcome in zip(parsed, outcomes, strict=True):
        if isinstance(outcome, Exception):
            result.dead.append(_dead(record, f"summary failed: {outcome}", "summarise"))
        else:
            done.append((outcome, conversation, record))
    if done:
        await _embed(done, embedder, into=result)
    return result


async def _summarise_each(
    conversations: Sequence[Conversation],
    summarise: SummariseOne,
    *,
    concurrency: int | asyncio.Semaphore,
    permanent_errors: tuple[type[Exception], ...],
) -> list[Summary | Exception]:
    """Each conversation's summary or the permanent error it raised, `concurrency` at a time."""
    semaphore = (
        concurrency
        if isinstance(concurrency, asyncio.Semaphore)
        else asyncio.Semaphore(concurrency)
    )

    async def one(conversation: Conversation) -> Summary | Exception:
        async with semaphore:
            try:
                return await summarise(conversation)
            except permanent_errors as err:
                return err

    return await asyncio.gather(*(one(c) for c in conversations))


async def _embed(
    done: Sequence[tuple[Summary, Conversation, RawRecord]],
    embedder: Embedder,
    *,
    into: IngestResult,
) -> None:
    """Embed the summaries in one call; a vector that is not finite makes a dead letter."""
    texts = [summary.embedding_text() for summary, _, _ in done]
    vectors = np.asarray(await asyncio.to_thread(embedder.embed, texts), dtype=np.float32)
    finite = cast("list[bool]", np.isfinite(vectors).all(axis=1).tolist())
    rows = vectors.tolist()  # one conversion for the batch, not one per vector
    for (summary, conversation, record), vector, ok in zip(done, rows, finite, strict=True):
        if not ok:
            into.dead.append(_dead(record, "embedding is not finite", "embed"))
            continue
        into.embedded.append(
            EmbeddedConversation(
                chat_id=conversation.chat_id,
                summary=summary,
                vector=tuple(vector),
                embedder=embedder.name,
                created_at=conversation.created_at,
                received_at=_received_at(record),
                content_hash=content_hash(conversation),
                origin=record.source,
                **stored_messages(conversation),
            )
        )


def _dead(record: RawRecord, reason: str, stage: str) -> DeadLetter:
    logger.warning("dead letter at %s (%s): %s", stage, record.source, reason)
    return DeadLetter.from_record(
        record.value, reason=reason, stage=stage, key=record.key, source=record.source
    )


@dataclass(frozen=True)
class Ingestor:
    """The summarise + embed use case with its collaborators, as the consumer calls it.

    Attributes:
        summarise: Summarises one (already scrubbed) conversation.
        embedder: Embeds summary texts.
        max_bytes: Larger messages are dead-lettered as oversized.
        concurrency: Summaries in flight at once, over every batch this Ingestor handles
            (the service's summarise consumers share it: one bound for the process, so a
            batch's slow tail leaves room for the next batch's calls).
        permanent_errors: Exceptions from summarise that mean "this record will never work".
        summarise_batch: When given, used instead of summarise for the whole batch.
        metadata_keys: The metadata keys kept.
    """

    summarise: SummariseOne
    embedder: Embedder
    max_bytes: int
    concurrency: int
    permanent_errors: tuple[type[Exception], ...] = (BadRecord,)
    summarise_batch: SummariseMany | None = None
    metadata_keys: tuple[str, ...] = ()
    slots: asyncio.Semaphore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """One semaphore for every batch (asyncio binds it to a loop on first use)."""
        object.__setattr__(self, "slots", asyncio.Semaphore(self.concurrency))

    async def __call__(self, records: Sequence[RawRecord]) -> IngestResult:
        """Ingest a batch (see `ingest`)."""
        return await ingest(
            records,
            summarise=self.summarise,
            embedder=self.embedder,
            max_bytes=self.max_bytes,
            concurrency=self.slots,
            permanent_errors=self.permanent_errors,
            summarise_batch=self.summarise_batch,
            metadata_keys=self.metadata_keys,
        )

    async def each(
        self,
        records: Sequence[RawRecord],
        *,
        reason_for: Callable[[Exception], str],
        is_transient: Callable[[Exception], bool],
    ) -> IngestResult:
        """A batch that keeps failing, one record at a time: only the records that fail alone die.

        A transient failure still propagates, so the batch is redelivered later.
        """
        result = IngestResult()
        for record in records:
            try:
                one = await self([record])
            except Exception as err:
                if is_transient(err):
                    raise
                result.dead.append(_dead(record, reason_for(err), "summarise"))
                continue
            result.embedded += one.embedded
            result.dead += one.dead
        return result
