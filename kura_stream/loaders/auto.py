"""Pick a file's format from its content and extension, and load it: `load_conversations`."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Literal

from kura_stream.loaders.base import LoadError, LoadItem, LoadResult, collect
from kura_stream.loaders.claude import iter_claude_export
from kura_stream.loaders.containers import iter_records
from kura_stream.loaders.kura import iter_kura
from kura_stream.loaders.sharegpt import iter_sharegpt

logger = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "kura", "claude", "sharegpt"]
RecordFormat = Literal["kura", "claude", "sharegpt"]

_SNIFF_RECORDS = 20


def detect_format(path: Path) -> RecordFormat:
    """The record format of a file, from the keys of its first decodable record.

    `chat_messages` means a Claude export, `conversations` a ShareGPT file, anything else is
    read as Kura's format (JSON lines or a JSON list, told apart by the first character).
    """
    with closing(iter_records(path)) as records:
        for record in itertools.islice(records, _SNIFF_RECORDS):
            if isinstance(record, LoadError):
                continue
            _, raw = record
            if isinstance(raw, Mapping):
                if "chat_messages" in raw:
                    return "claude"
                if "conversations" in raw:
                    return "sharegpt"
                return "kura"
    return "kura"


def iter_conversations(path: Path | str, format: Format = "auto") -> Iterator[LoadItem]:
    """Conversations and load errors from a file, streaming, in file order.

    Args:
        path: A .jsonl/.json file.
        format: "auto" to detect; "jsonl" or "kura" for Kura's format (JSON lines or Kura's
            JSON-list dump; the container is always sniffed); "claude" for a Claude export's
            conversations.json; "sharegpt" for a ShareGPT file. Hugging Face datasets are read
            with `load_hf_dataset` instead.

    Returns:
        An iterator of Conversation and LoadError items.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The format is not one of the above.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    chosen = detect_format(path) if format == "auto" else format
    logger.info("loading %s as %s", path, chosen)
    if chosen in ("jsonl", "kura"):
        return iter_kura(path)
    if chosen == "claude":
        return iter_claude_export(path)
    if chosen == "sharegpt":
        return iter_sharegpt(path)
    raise ValueError(f"unknown format {format!r}")


def load_conversations(path: Path | str, format: Format = "auto") -> LoadResult:
    """Load every good conversation of a file, and a LoadError for each refused record.

    A bad record never stops a load. Missing timestamps follow the created_at policy of
    `kura_stream.loaders.base.build_conversation` (earliest message time, else 1970-01-01Z with
    `created_at_missing: true` in the metadata).

    Args:
        path: The file.
        format: See `iter_conversations`.

    Returns:
        The conversations and the refused records.
    """
    return collect(iter_conversations(path, format))
