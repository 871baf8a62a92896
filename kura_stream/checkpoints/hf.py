"""Checkpoints as Hugging Face dataset folders (save_to_disk / load_from_disk), swapped whole."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

logger = logging.getLogger(__name__)

HEADER_FILE = "kura_stream_checkpoint.json"
"""The table's schema metadata (the checkpoint header), beside the dataset's own files:
save_to_disk keeps only its own metadata. A checkpoint of no rows has this file alone (the
datasets library cannot read back a dataset of no rows)."""


def _datasets() -> Any:
    try:
        return importlib.import_module("datasets")
    except ImportError as exc:
        raise ImportError("HF dataset checkpoints need: pip install 'kura-stream[hf]'") from exc


def save_dataset(path: Path, table: pa.Table) -> None:
    """Write `table` as a dataset folder at `path`, replacing any folder there.

    The new folder is written beside `path` and renamed into place; the old one is renamed
    away first and removed after, so a crash leaves the old folder, the new one, or none
    (a miss), never a mix of both.
    """
    hf = _datasets()
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        if table.num_rows:
            hf.Dataset(hf.table.InMemoryTable(table)).save_to_disk(str(tmp))
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        (tmp / HEADER_FILE).write_text(json.dumps(meta))
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_dataset_table(path: Path) -> pa.Table:
    """The Arrow table of a dataset folder written by `save_dataset`."""
    meta = json.loads((path / HEADER_FILE).read_text())
    if not (path / "state.json").exists():
        return pa.table({}).replace_schema_metadata(meta)
    table: pa.Table = _datasets().load_from_disk(str(path)).data.table
    return table.replace_schema_metadata(meta)
