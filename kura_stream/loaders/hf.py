"""Load conversations from a Hugging Face dataset (by name or local files) with mapping fns."""

from __future__ import annotations

import importlib
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from kura_stream.types import Conversation, Message, MetadataValue

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]


def default_chat_id(row: Row) -> Any:
    """Kura's default: the row's `chat_id`."""
    return row["chat_id"]


def default_created_at(row: Row) -> Any:
    """The row's `created_at`, or None (then the created_at policy applies)."""
    return row.get("created_at")


def default_messages(row: Row) -> Any:
    """Kura's default: the row's `messages`."""
    return row["messages"]


def default_metadata(row: Row) -> Mapping[str, MetadataValue]:
    """Kura's default: no metadata."""
    return {}


def _call(fn: Callable[[Row], Any], row: Row, what: str) -> Any:
    try:
        return fn(row)
    except Exception as exc:  # a user's mapping function failing on one row refuses that row
        raise RecordError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _hf_turn(message: Any) -> Turn | None:
    if isinstance(message, Message):
        return Turn(message.role, message.content, message.created_at)
    if not isinstance(message, Mapping):
        raise RecordError("not an object")
    role = map_role(message.get("role", message.get("from")))
    if role is None:
        return None
    content = message.get("content", message.get("value"))
    return Turn(role, content_text(content), parse_time(message.get("created_at")))


def _turns(messages: Any) -> list[Turn]:
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        raise RecordError("messages: not a list")
    return parse_turns(list(messages), "messages", _hf_turn)


def make_row_parser(
    *,
    chat_id_fn: Callable[[Row], Any] = default_chat_id,
    created_at_fn: Callable[[Row], Any] = default_created_at,
    messages_fn: Callable[[Row], Any] = default_messages,
    metadata_fn: Callable[[Row], Mapping[str, MetadataValue]] = default_metadata,
) -> Callable[[Any], Conversation]:
    """A parser of dataset rows built from Kura-style mapping functions.

    messages_fn returns a list of Message objects or of dicts with role/content (or ShareGPT's
    from/value) and an optional created_at.
    """

    def parse(row: Any) -> Conversation:
        if not isinstance(row, Mapping):
            raise RecordError(f"expected a row mapping, got {type(row).__name__}")
        return build_conversation(
            _call(chat_id_fn, row, "chat_id_fn"),
            _call(created_at_fn, row, "created_at_fn"),
            _turns(_call(messages_fn, row, "messages_fn")),
            _call(metadata_fn, row, "metadata_fn"),
        )

    return parse


_SAVED_MARKERS = ("state.json", "dataset_dict.json")
"""Files that `save_to_disk` writes at the top of a Dataset or a DatasetDict folder."""


def is_saved_dataset(path: str) -> bool:
    """Whether `path` is a local folder written by `Dataset(Dict).save_to_disk`."""
    folder = Path(path)
    return folder.is_dir() and any((folder / m).is_file() for m in _SAVED_MARKERS)


def _from_disk(hf: Any, path: str, split: str) -> Iterable[Any]:
    """The rows of a saved dataset; the `split` of a saved DatasetDict."""
    saved = hf.load_from_disk(path)
    if isinstance(saved, Mapping) or hasattr(saved, "keys"):
        if split not in saved:
            raise ValueError(f"{path} has splits {sorted(saved.keys())}, not {split!r}")
        saved = saved[split]
    rows: Iterable[Any] = saved
    return rows


def _open_dataset(
    path: str,
    name: str | None,
    split: str,
    data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None,
    streaming: bool,
) -> Iterable[Any]:
    """The split's rows, from a save_to_disk folder or through load_dataset (see the caller)."""
    try:
        hf = importlib.import_module("datasets")
    except ImportError as exc:
        raise ImportError(
            "loading a Hugging Face dataset needs: pip install 'kura-stream[hf]'"
        ) from exc
    if is_saved_dataset(path):
        return _from_disk(hf, path, split)
    kwargs: dict[str, Any] = {"split": split, "streaming": streaming}
    if name is not None:
        kwargs["name"] = name
    if data_files is not None:
        kwargs["data_files"] = data_files
    dataset: Iterable[Any] = hf.load_dataset(path, **kwargs)
    return dataset


def iter_hf_dataset(
    path: str,
    *,
    name: str | None = None,
    split: str = "train",
    data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
    max_conversations: int | None = None,
    streaming: bool = True,
    chat_id_fn: Callable[[Row], Any] = default_chat_id,
    created_at_fn: Callable[[Row], Any] = default_created_at,
    messages_fn: Callable[[Row], Any] = default_messages,
    metadata_fn: Callable[[Row], Mapping[str, MetadataValue]] = default_metadata,
) -> Iterator[LoadItem]:
    """Conversations and load errors from a Hugging Face dataset, row by row.

    Args:
        path: A dataset name on the hub ("org/name"), a local folder of data files, a folder
            written by `Dataset.save_to_disk` (read with load_from_disk, memory-mapped), or a
            builder such as "json" or "parquet" with `data_files`.
        name: The dataset configuration, if any.
        split: The split to read.
        data_files: Local files for a builder path (e.g. load_dataset("json", data_files=...)).
        max_conversations: Read at most this many rows (Kura's `take`).
        streaming: Stream rows instead of preparing the whole dataset first (Kura streams).
        chat_id_fn: Row -> chat_id (Kura's default: row["chat_id"]).
        created_at_fn: Row -> created_at; None applies the created_at policy.
        messages_fn: Row -> messages (Kura's default: row["messages"]).
        metadata_fn: Row -> metadata (Kura's default: {}).

    Yields:
        Conversations and LoadErrors (with the row index) in row order.

    Raises:
        ImportError: The `datasets` package is not installed (install kura-stream[hf]).
    """
    dataset = _open_dataset(path, name, split, data_files, streaming)
    rows: Iterable[Any] = dataset
    if max_conversations is not None:
        rows = itertools.islice(dataset, max_conversations)
    parse = make_row_parser(
        chat_id_fn=chat_id_fn,
        created_at_fn=created_at_fn,
        messages_fn=messages_fn,
        metadata_fn=metadata_fn,
    )
    source = f"hf:{path}" + (f"/{name}" if name else "") + f"[{split}]"
    return parse_records(enumerate(rows), parse, source)


def load_hf_dataset(path: str, **kwargs: Any) -> LoadResult:
    """Load a Hugging Face dataset into a LoadResult; arguments as for `iter_hf_dataset`."""
    return collect(iter_hf_dataset(path, **kwargs))
