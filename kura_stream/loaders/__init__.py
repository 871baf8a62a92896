"""Load conversations from JSONL, Kura dumps, Claude exports, ShareGPT files and HF datasets."""

from kura_stream.loaders.auto import detect_format, iter_conversations, load_conversations
from kura_stream.loaders.base import (
    CREATED_AT_MISSING,
    UNKNOWN_CREATED_AT,
    LoadError,
    LoadItem,
    LoadResult,
)
from kura_stream.loaders.claude import iter_claude_export, load_claude_export
from kura_stream.loaders.hf import iter_hf_dataset, load_hf_dataset
from kura_stream.loaders.kura import (
    iter_kura_dump,
    iter_kura_jsonl,
    load_kura_dump,
    load_kura_jsonl,
)
from kura_stream.loaders.sharegpt import iter_sharegpt, load_sharegpt

__all__ = [
    "CREATED_AT_MISSING",
    "UNKNOWN_CREATED_AT",
    "LoadError",
    "LoadItem",
    "LoadResult",
    "detect_format",
    "iter_claude_export",
    "iter_conversations",
    "iter_hf_dataset",
    "iter_kura_dump",
    "iter_kura_jsonl",
    "iter_sharegpt",
    "load_claude_export",
    "load_conversations",
    "load_hf_dataset",
    "load_kura_dump",
    "load_kura_jsonl",
    "load_sharegpt",
]
