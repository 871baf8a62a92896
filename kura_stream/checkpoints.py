"""Per-stage checkpoints (JSONL or Parquet) that are returned only for the input that made them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
from pydantic import BaseModel, JsonValue, ValidationError

from kura_stream.types import SCHEMA_VERSION

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Format = Literal["jsonl", "parquet"]

_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_META = b"kura_stream.checkpoint"


def input_key(
    *,
    records: Sequence[BaseModel],
    params: Mapping[str, JsonValue] | None = None,
    models: Sequence[str] = (),
) -> str:
    """The key of a stage's input: everything that produced its output, hashed.

    Args:
        records: The input records, in order (their full JSON content, not just their ids).
        params: The stage's parameters (thresholds, k, seeds, ...).
        models: Identities of the models involved (Summariser.name, Embedder.name, ...).

    Returns:
        sha256 hex of the records' JSON, the params, the models and SCHEMA_VERSION.
    """
    h = hashlib.sha256()
    header = {"schema": SCHEMA_VERSION, "params": params or {}, "models": list(models)}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for record in records:
        h.update(b"\n")
        h.update(type(record).__name__.encode())
        h.update(record.model_dump_json().encode())
    return h.hexdigest()


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    """A temp file next to path, renamed over it once written and synced (or removed)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _column_kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if all(isinstance(v, str) for v in present):
        return "string"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float64"
    return "json"


class CheckpointStore:
    """One checkpoint file per stage in a folder, in JSONL or Parquet.

    The file carries its input key (JSONL: a header line; Parquet: schema metadata) with the
    record type and SCHEMA_VERSION. `load` returns records only when all of them match: a
    checkpoint for other input is a miss, logged, never a stale answer. Writes go to a temp
    file that is renamed into place, so a crash leaves the old checkpoint or the new one.
    """

    def __init__(self, directory: str | Path, format: Format = "jsonl") -> None:
        """Create the store (the folder is created on first save).

        Args:
            directory: Folder of the checkpoint files.
            format: "jsonl" (one JSON record a line) or "parquet" (pyarrow).
        """
        if format not in ("jsonl", "parquet"):
            raise ValueError(f"unknown checkpoint format {format!r}")
        self.directory = Path(directory)
        self.format: Format = format

    def path(self, stage: str) -> Path:
        """The checkpoint file of a stage."""
        if not _STAGE.match(stage):
            raise ValueError(f"stage name {stage!r} is not a safe file name")
        return self.directory / f"{stage}.{self.format}"

    def _header(self, stage: str, input_key: str, model: str, count: int) -> dict[str, Any]:
        return {
            "stage": stage,
            "input_key": input_key,
            "model": model,
            "schema_version": SCHEMA_VERSION,
            "count": count,
        }

    def save(self, stage: str, input_key: str, records: Sequence[BaseModel]) -> Path:
        """Write a stage's output, atomically, under the key of the input it came from.

        Args:
            stage: The stage name (a safe file name, e.g. "summaries").
            input_key: Key of the input the records came from (module function input_key).
            records: The output records, all of one pydantic type (may be empty).

        Returns:
            The checkpoint file.
        """
        kinds = {type(r).__name__ for r in records}
        if len(kinds) > 1:
            raise ValueError(f"records of several types: {sorted(kinds)}")
        model = kinds.pop() if kinds else ""
        path = self.path(stage)
        self.directory.mkdir(parents=True, exist_ok=True)
        header = self._header(stage, input_key, model, len(records))
        if self.format == "jsonl":
            with _atomic(path, "w") as f:
                f.write(json.dumps({"_checkpoint": header}) + "\n")
                for r in records:
                    f.write(r.model_dump_json() + "\n")
        else:
            self._save_parquet(path, header, records)
        logger.info("checkpoint %s: %d records saved to %s", stage, len(records), path)
        return path

    def load(self, stage: str, input_key: str, model_type: type[M]) -> list[M] | None:
        """The stage's records if its checkpoint was made from this input, else None.

        Args:
            stage: The stage name.
            input_key: Key of the current input (module function input_key).
            model_type: The record type to validate the records against.

        Returns:
            The records (possibly an empty list), or None on a miss: no file, other input,
            another record type or schema version, or a file that does not read back.
        """
        path = self.path(stage)
        if not path.exists():
            return None
        try:
            if self.format == "jsonl":
                header, rows = self._load_jsonl(path)
            else:
                header, rows = self._load_parquet(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("checkpoint %s unreadable (%s): miss", path, exc)
            return None
        expected = self._header(stage, input_key, model_type.__name__, header.get("count", -1))
        if header.get("count") == 0:
            expected["model"] = header.get("model")
        for field in ("input_key", "schema_version", "model"):
            if header.get(field) != expected[field]:
                logger.info(
                    "checkpoint %s is for other input (%s %r, wanted %r): miss",
                    path,
                    field,
                    header.get(field),
                    expected[field],
                )
                return None
        if len(rows) != header.get("count"):
            logger.warning(
                "checkpoint %s holds %d of %s records: miss", path, len(rows), header.get("count")
            )
            return None
        try:
            records = [model_type.model_validate(row) for row in rows]
        except ValidationError as exc:
            logger.warning("checkpoint %s does not validate (%s): miss", path, exc.error_count())
            return None
        logger.info("checkpoint %s: %d records reused", stage, len(records))
        return records

    @staticmethod
    def _load_jsonl(path: Path) -> tuple[dict[str, Any], list[Any]]:
        with path.open() as f:
            first = f.readline()
            header = json.loads(first)["_checkpoint"] if first else {}
            rows = [json.loads(line) for line in f if line.strip()]
        return header, rows

    @staticmethod
    def _save_parquet(path: Path, header: dict[str, Any], records: Sequence[BaseModel]) -> None:
        rows = [r.model_dump(mode="json") for r in records]
        columns: dict[str, Any] = {}
        json_cols: list[str] = []
        for name in rows[0] if rows else []:
            values = [row[name] for row in rows]
            kind = _column_kind(values)
            if kind == "json":
                json_cols.append(name)
                values = [json.dumps(v, ensure_ascii=False) for v in values]
                kind = "string"
            columns[name] = pa.array(values, type=getattr(pa, kind)())
        meta = {**header, "json_columns": json_cols}
        table = pa.table(columns).replace_schema_metadata({_META: json.dumps(meta).encode()})
        with _atomic(path, "wb") as f:
            pq.write_table(table, f)

    @staticmethod
    def _load_parquet(path: Path) -> tuple[dict[str, Any], list[Any]]:
        table = pq.read_table(path)
        meta = (table.schema.metadata or {}).get(_META)
        if meta is None:
            raise ValueError("no kura_stream checkpoint metadata")
        header: dict[str, Any] = json.loads(meta)
        rows = table.to_pylist()
        for name in header.get("json_columns", []):
            for row in rows:
                row[name] = json.loads(row[name])
        return header, rows
