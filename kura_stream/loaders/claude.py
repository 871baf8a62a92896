"""Load a Claude data export (conversations.json), as Kura's from_claude_conversation_dump does."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
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
    parse_turns,
)
from kura_stream.loaders.containers import iter_records
from kura_stream.types import Conversation, MetadataValue

logger = logging.getLogger(__name__)

MetadataFn = Callable[[Mapping[str, Any]], Mapping[str, MetadataValue]]

_SENDERS: dict[str, Role] = {"human": "user", "assistant": "assistant"}


def _no_metadata(_: Mapping[str, Any]) -> Mapping[str, MetadataValue]:
    return {}


def _claude_turn(message: Any) -> Turn:
    if not isinstance(message, Mapping):
        raise RecordError("not an object")
    sender = message.get("sender")
    role = _SENDERS.get(sender) if isinstance(sender, str) else None
    if role is None:
        raise RecordError(f"unknown sender {sender!r}")
    items = message.get("content")
    if isinstance(items, list):
        text = content_text([p for p in items if isinstance(p, Mapping)])
    else:
        text = content_text(message.get("text", ""))
    return Turn(role, text, parse_time(message.get("created_at")))


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
    turns = parse_turns(raw.get("chat_messages"), "chat_messages", _claude_turn)
    start = parse_time(raw.get("created_at")) or UNKNOWN_CREATED_AT
    # By time, a human message before an assistant one at the same time, then in file order.
    order = sorted(
        range(len(turns)),
        key=lambda i: (turns[i].created_at or start, 0 if turns[i].role == "user" else 1, i),
    )
    metadata = dict(metadata_fn(raw))
    turns = [turns[i] for i in order]
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
