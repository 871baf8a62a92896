"""Kura's Conversation loaders by name, returning lists; refused records are logged, not lost.

`Conversation.from_hf_dataset` and its siblings call these, so the data model holds no I/O.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kura_stream.loaders.base import LoadResult
from kura_stream.loaders.claude import MetadataFn, load_claude_export
from kura_stream.loaders.hf import (
    Row,
    default_chat_id,
    default_created_at,
    default_messages,
    default_metadata,
    load_hf_dataset,
)
from kura_stream.loaders.kura import load_kura_dump
from kura_stream.types import Conversation, MetadataValue

logger = logging.getLogger(__name__)


def _conversations(result: LoadResult, source: str) -> list[Conversation]:
    """The loaded conversations; each refused record is logged with its reason (Kura raises)."""
    for error in result.errors:
        logger.warning("%s: record %d refused: %s", source, error.line_or_index, error.reason)
    return result.conversations


def _no_metadata(_: Mapping[str, Any]) -> Mapping[str, MetadataValue]:
    return {}


def from_hf_dataset(
    dataset_name: str,
    split: str = "train",
    max_conversations: int | None = None,
    chat_id_fn: Callable[[Row], Any] = default_chat_id,
    created_at_fn: Callable[[Row], Any] = default_created_at,
    messages_fn: Callable[[Row], Any] = default_messages,
    metadata_fn: Callable[[Row], Mapping[str, MetadataValue]] = default_metadata,
    *,
    name: str | None = None,
    data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
) -> list[Conversation]:
    """Kura's Conversation.from_hf_dataset, with the same arguments and defaults.

    Beyond Kura: `dataset_name` may also be a local folder of data files or a folder written
    by save_to_disk, and `name` / `data_files` pass to load_dataset (e.g. "json" with
    data_files=...). A row without created_at takes its first message's time (Kura raises).

    Args:
        dataset_name: Hub name ("org/name"), local folder, or builder name ("json").
        split: The split to read.
        max_conversations: Read at most this many rows.
        chat_id_fn: Row -> chat_id.
        created_at_fn: Row -> created_at.
        messages_fn: Row -> list of {role, content[, created_at]} or Message.
        metadata_fn: Row -> metadata.
        name: The dataset configuration.
        data_files: Files for a builder name.

    Returns:
        The conversations, in row order; refused rows are logged and left out.
    """
    result = load_hf_dataset(
        dataset_name,
        name=name,
        split=split,
        data_files=data_files,
        max_conversations=max_conversations,
        chat_id_fn=chat_id_fn,
        created_at_fn=created_at_fn,
        messages_fn=messages_fn,
        metadata_fn=metadata_fn,
    )
    return _conversations(result, f"hf:{dataset_name}[{split}]")


def from_claude_conversation_dump(
    file_path: str, metadata_fn: MetadataFn = _no_metadata
) -> list[Conversation]:
    """Kura's Conversation.from_claude_conversation_dump (a Claude export's conversations.json)."""
    return _conversations(load_claude_export(Path(file_path), metadata_fn), file_path)


def from_conversation_dump(file_path: str) -> list[Conversation]:
    """Kura's Conversation.from_conversation_dump (a JSON list of conversations)."""
    return _conversations(load_kura_dump(Path(file_path)), file_path)


def generate_conversation_dump(conversations: Sequence[Conversation], file_path: str) -> None:
    """Kura's Conversation.generate_conversation_dump: a JSON list of the conversations."""
    with open(file_path, "w", encoding="utf-8") as f:
        json.dump([c.model_dump(mode="json") for c in conversations], f)
