"""Load conversations in Kura's format: JSON lines, or Kura's conversation dump (a JSON list)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kura_stream.loaders.base import (
    LoadItem,
    LoadResult,
    RecordError,
    Turn,
    build_conversation,
    collect,
    content_text,
    map_role,
    parse_records,
    parse_time,
    parse_turns,
)
from kura_stream.loaders.containers import iter_json_array, iter_jsonl, iter_records
from kura_stream.types import Conversation

logger = logging.getLogger(__name__)


def _kura_turn(message: Any) -> Turn | None:
    if not isinstance(message, Mapping):
        raise RecordError("not an object")
    role = map_role(message.get("role"))
    if role is None:
        return None
    content = content_text(message.get("content"))
    return Turn(role, content, parse_time(message.get("created_at")))


def parse_kura_record(raw: Any) -> Conversation:
    """A Conversation from one record with Kura's field names.

    Fields: chat_id, created_at, messages (each created_at, role, content) and metadata. Extra
    fields are ignored, as Kura's own model does. A "system" message is skipped; any role other
    than user/assistant (or their ShareGPT names) is refused.

    Raises:
        RecordError: The record is not a valid conversation.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
    turns = parse_turns(raw.get("messages"), "messages", _kura_turn)
    return build_conversation(raw.get("chat_id"), raw.get("created_at"), turns, raw.get("metadata"))


def iter_kura_jsonl(path: Path) -> Iterator[LoadItem]:
    """Conversations and load errors from a JSONL file of Kura conversations, in file order."""
    return parse_records(iter_jsonl(path), parse_kura_record, str(path))


def load_kura_jsonl(path: Path) -> LoadResult:
    """Load a JSONL file of Kura conversations (one Conversation JSON per line)."""
    return collect(iter_kura_jsonl(path))


def iter_kura_dump(path: Path) -> Iterator[LoadItem]:
    """Conversations and load errors from Kura's conversation dump (a JSON list), streaming."""
    return parse_records(iter_json_array(path), parse_kura_record, str(path))


def load_kura_dump(path: Path) -> LoadResult:
    """Load Kura's conversation dump, as `Conversation.generate_conversation_dump` writes it."""
    return collect(iter_kura_dump(path))


def iter_kura(path: Path) -> Iterator[LoadItem]:
    """Kura conversations from a file that is either JSON lines or a JSON list (sniffed)."""
    return parse_records(iter_records(path), parse_kura_record, str(path))
