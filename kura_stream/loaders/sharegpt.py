"""Load ShareGPT-style files: JSON list or lines of {id, conversations: [{from, value}]}."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
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
    parse_turns,
)
from kura_stream.loaders.containers import iter_records
from kura_stream.types import Conversation, MetadataValue

logger = logging.getLogger(__name__)

MetadataFn = Callable[[Mapping[str, Any]], Mapping[str, MetadataValue]]


def _no_metadata(_: Mapping[str, Any]) -> Mapping[str, MetadataValue]:
    return {}


def _sharegpt_turn(turn: Any) -> Turn | None:
    if not isinstance(turn, Mapping):
        raise RecordError("not an object")
    role = map_role(turn.get("from"))
    return None if role is None else Turn(role, content_text(turn.get("value")))


def parse_sharegpt_record(raw: Any, metadata_fn: MetadataFn = _no_metadata) -> Conversation:
    """A Conversation from one ShareGPT record.

    `from` human/user becomes the user; gpt, chatgpt, bing, bard (and assistant, model) the
    assistant; system turns are skipped; any other speaker refuses the record. ShareGPT has no
    timestamps, so the created_at policy of `build_conversation` applies.

    Raises:
        RecordError: The record is not a valid conversation.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
    turns = parse_turns(raw.get("conversations"), "conversations", _sharegpt_turn)
    chat_id = raw.get("id", raw.get("chat_id"))
    created_at = raw.get("created_at")
    return build_conversation(chat_id, created_at, turns, dict(metadata_fn(raw)))


def iter_sharegpt(path: Path, metadata_fn: MetadataFn = _no_metadata) -> Iterator[LoadItem]:
    """Conversations and load errors from a ShareGPT file, streaming.

    A JSON list cut off mid-way yields every whole conversation before the cut, then one
    LoadError for the cut.
    """
    return parse_records(
        iter_records(path), lambda raw: parse_sharegpt_record(raw, metadata_fn), str(path)
    )


def load_sharegpt(path: Path, metadata_fn: MetadataFn = _no_metadata) -> LoadResult:
    """Load a ShareGPT-style file (JSON list or JSON lines).

    Args:
        path: The file.
        metadata_fn: Builds a conversation's metadata from its raw record (default: none).

    Returns:
        The conversations and the refused records (including the cut-off tail, if any).
    """
    return collect(iter_sharegpt(path, metadata_fn))
