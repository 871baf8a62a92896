"""Load a Claude data export (conversations.json), as Kura's from_claude_conversation_dump does."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kura_stream.loaders.base import (
    UNKNOWN_CREATED_AT,
    LoadItem,
    LoadResult,
    RecordError,
    Role,
    Turn,
    build_conversation,
    collect,
    content_text,
    parse_records,
    parse_time,
)
from kura_stream.loaders.containers import iter_records
from kura_stream.types import Conversation, MetadataValue

logger = logging.getLogger(__name__)

MetadataFn = Callable[[Mapping[str, Any]], Mapping[str, MetadataValue]]

_SENDERS: dict[str, Role] = {"human": "user", "assistant": "assistant"}


def _no_metadata(_: Mapping[str, Any]) -> Mapping[str, MetadataValue]:
    return {}


def parse_claude_record(raw: Any, metadata_fn: MetadataFn = _no_metadata) -> Conversation:
    """A Conversation from one conversation of a Claude export.

    Mirrors Kura: chat_id is `uuid`; the text of a message is its `content` items of type
    "text" joined by newlines (falling back to its `text` field when it has no content list);
    messages are sorted by created_at, a human message before an assistant one at the same
    time. Unlike Kura, a sender other than human/assistant is refused rather than taken as the
    assistant, and messages without text (attachments only) are dropped.

    Raises:
        RecordError: The record is not a valid conversation.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
    messages = raw.get("chat_messages")
    if not isinstance(messages, list):
        raise RecordError("chat_messages: missing or not a list")
    if not messages:
        raise RecordError("chat_messages: empty")
    keyed: list[tuple[datetime | None, int, int, Turn]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise RecordError(f"chat_messages.{i}: not an object")
        sender = message.get("sender")
        role = _SENDERS.get(sender) if isinstance(sender, str) else None
        if role is None:
            raise RecordError(f"chat_messages.{i}: unknown sender {sender!r}")
        try:
            items = message.get("content")
            if isinstance(items, list):
                text = content_text([p for p in items if isinstance(p, Mapping)])
            else:
                text = content_text(message.get("text", ""))
            when = parse_time(message.get("created_at"))
        except RecordError as exc:
            raise RecordError(f"chat_messages.{i}: {exc.reason}") from exc
        keyed.append((when, 0 if role == "user" else 1, i, Turn(role, text, when)))
    start = parse_time(raw.get("created_at")) or UNKNOWN_CREATED_AT
    keyed.sort(key=lambda k: (k[0] or start, k[1], k[2]))
    metadata = dict(metadata_fn(raw))
    turns = [k[3] for k in keyed]
    return build_conversation(raw.get("uuid"), raw.get("created_at"), turns, metadata)


def iter_claude_export(path: Path, metadata_fn: MetadataFn = _no_metadata) -> Iterator[LoadItem]:
    """Conversations and load errors from a Claude export's conversations.json, streaming."""
    return parse_records(
        iter_records(path), lambda raw: parse_claude_record(raw, metadata_fn), str(path)
    )


def load_claude_export(path: Path, metadata_fn: MetadataFn = _no_metadata) -> LoadResult:
    """Load a Claude export's conversations.json.

    Args:
        path: The conversations.json file.
        metadata_fn: Builds a conversation's metadata from its raw record (Kura's default: none).

    Returns:
        The conversations and the refused records.
    """
    return collect(iter_claude_export(path, metadata_fn))
