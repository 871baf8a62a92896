"""What every loader shares: load errors, role mapping, the created_at policy, record building."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from kura_stream.privacy import scrub
from kura_stream.types import Conversation, Message

logger = logging.getLogger(__name__)

UNKNOWN_CREATED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""created_at given to a conversation whose source has no timestamp at all (see `resolve`)."""

CREATED_AT_MISSING = "created_at_missing"
"""Metadata key set to True on a conversation that was given UNKNOWN_CREATED_AT."""

USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"assistant", "gpt", "chatgpt", "bing", "bard", "model"})
SKIPPED_ROLES = frozenset({"system"})

EXCERPT_CHARS = 200

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class LoadError:
    """A record that could not be loaded; the load goes on without it.

    Attributes:
        source: The file (or dataset) it came from.
        line_or_index: 1-based line number in a JSONL file; 0-based item index in a JSON list
            or a dataset.
        reason: Why it was refused, in a few words.
        excerpt: The start of the raw record, scrubbed of personal data.
    """

    source: str
    line_or_index: int
    reason: str
    excerpt: str


@dataclass
class LoadResult:
    """The outcome of a load: the good conversations and the refused records, side by side."""

    conversations: list[Conversation] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


LoadItem = Conversation | LoadError
"""What a loader's iterator yields: a good conversation or a refused record, in file order."""

RawRecord = tuple[int, Any]
"""A decoded record and its position (line or index) before it is parsed."""


class RecordError(ValueError):
    """Raised by a record parser with a short reason; becomes a LoadError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def excerpt(raw: object, limit: int = EXCERPT_CHARS) -> str:
    """The start of a raw record as text, scrubbed, at most `limit` characters."""
    if isinstance(raw, str | bytes):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    else:
        try:
            text = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(raw)
    text = text[: limit * 2]  # scrub a little more than is kept so a cut secret is still seen
    return scrub(text)[:limit]


def map_role(raw: object) -> Role | None:
    """Kura's role for a source's role name, or None for a role that is skipped (system).

    Raises:
        RecordError: The role is not known.
    """
    role = raw.strip().lower() if isinstance(raw, str) else raw
    if role in USER_ROLES:
        return "user"
    if role in ASSISTANT_ROLES:
        return "assistant"
    if role in SKIPPED_ROLES:
        return None
    raise RecordError(f"unknown role {raw!r}")


def parse_time(value: object) -> datetime | None:
    """A timezone-aware datetime from an ISO string, a datetime or Unix seconds/milliseconds.

    Naive times are taken as UTC. None and "" give None.

    Raises:
        RecordError: The value is not a time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise RecordError(f"bad timestamp {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds since the epoch
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise RecordError(f"bad timestamp {value!r}") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordError(f"bad timestamp {value[:40]!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise RecordError(f"bad timestamp {value!r}")


def content_text(value: object) -> str:
    """Message text from a string or a list of content parts ({"type": "text", "text": ...}).

    Raises:
        RecordError: The content is neither.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts)
    raise RecordError(f"message content is {type(value).__name__}, not text")


@dataclass(frozen=True)
class Turn:
    """One message before validation: its Kura role, text and (maybe missing) time."""

    role: Role
    content: str
    created_at: datetime | None = None


def parse_turns(items: object, field: str, parse: Callable[[Any], Turn | None]) -> list[Turn]:
    """The turns of a record's message list, each item parsed by `parse` (None: skipped).

    Args:
        items: The record's list of messages.
        field: The list's field name, for errors ("messages.3: unknown role 'x'").
        parse: One item -> its Turn, or None for a message that is skipped (system); raises
            RecordError with a short reason.

    Raises:
        RecordError: The list is missing or empty, or an item is refused (reason prefixed
            with the field and the item's index).
    """
    if not isinstance(items, list):
        raise RecordError(f"{field}: missing or not a list")
    if not items:
        raise RecordError(f"{field}: empty")
    turns = []
    for i, item in enumerate(items):
        try:
            turn = parse(item)
        except RecordError as exc:
            raise RecordError(f"{field}.{i}: {exc.reason}") from exc
        if turn is not None:
            turns.append(turn)
    return turns


def build_conversation(
    chat_id: object,
    created_at: object,
    turns: Iterable[Turn],
    metadata: object = None,
) -> Conversation:
    """Validate and assemble a Conversation, applying the created_at policy.

    The created_at policy: a conversation without created_at takes its earliest message time;
    with no time anywhere it takes UNKNOWN_CREATED_AT (1970-01-01T00:00:00Z), a fixed value so
    that loads are reproducible, and its metadata gets `created_at_missing: true` so it can be
    told apart. A message without created_at takes the conversation's. Naive times are UTC.
    Messages whose text is blank are dropped.

    Raises:
        RecordError: A field is missing or invalid, or no message has text.
    """
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        chat_id = str(chat_id)
    if not isinstance(chat_id, str) or not chat_id.strip():
        raise RecordError("missing chat_id")
    kept = [t for t in turns if t.content.strip()]
    if not kept:
        raise RecordError("no messages with text")
    meta: dict[str, Any] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise RecordError(f"metadata is {type(metadata).__name__}, not an object")
        meta = dict(metadata)
    when = parse_time(created_at)
    if when is None:
        times = [t.created_at for t in kept if t.created_at is not None]
        if times:
            when = min(times)
        else:
            when = UNKNOWN_CREATED_AT
            meta[CREATED_AT_MISSING] = True
    try:
        return Conversation(
            chat_id=chat_id,
            created_at=when,
            messages=tuple(
                Message(created_at=t.created_at or when, role=t.role, content=t.content)
                for t in kept
            ),
            metadata=meta,
        )
    except ValidationError as exc:
        raise RecordError(validation_reason(exc)) from exc


def validation_reason(exc: ValidationError) -> str:
    """A one-line reason from a pydantic ValidationError (its first three problems)."""
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
        for err in exc.errors()[:3]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (+{more} more)" if more > 0 else "")


def parse_records(
    records: Iterable[RawRecord | LoadError],
    parse: Callable[[Any], Conversation],
    source: str,
) -> Iterator[LoadItem]:
    """Turn decoded records into conversations and load errors; never stops on a bad one.

    A record whose chat_id was already seen in this load is refused as a duplicate (the first
    one is kept), since every downstream store is keyed by chat_id.

    Args:
        records: Decoded records with their positions, and errors from decoding.
        parse: Builds a Conversation from one record; raises RecordError (or anything else)
            when it cannot.
        source: Where the records come from, for the errors.

    Yields:
        Conversations and LoadErrors in record order.
    """
    seen: set[str] = set()
    for record in records:
        if isinstance(record, LoadError):
            yield record
            continue
        position, raw = record
        try:
            conv = parse(raw)
        except RecordError as exc:
            yield LoadError(source, position, exc.reason, excerpt(raw))
            continue
        except Exception as exc:  # errors are data here: one bad record must not stop a load
            reason = f"{type(exc).__name__}: {exc}"[:300]
            yield LoadError(source, position, reason, excerpt(raw))
            continue
        if conv.chat_id in seen:
            yield LoadError(source, position, f"duplicate chat_id {conv.chat_id!r}", excerpt(raw))
            continue
        seen.add(conv.chat_id)
        yield conv


def collect(items: Iterable[LoadItem]) -> LoadResult:
    """Split a loader's stream into a LoadResult, logging a count of refused records."""
    result = LoadResult()
    for item in items:
        if isinstance(item, LoadError):
            result.errors.append(item)
        else:
            result.conversations.append(item)
    if result.errors:
        logger.warning(
            "loaded %d conversations, refused %d records (first: %s at %d: %s)",
            len(result.conversations),
            len(result.errors),
            result.errors[0].source,
            result.errors[0].line_or_index,
            result.errors[0].reason,
        )
    return result
