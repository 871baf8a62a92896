"""Per-stage checkpoints (JSONL, Parquet, HF dataset) reused only for the input that made them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
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
Format = Literal["jsonl", "parquet", "hf"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet", "hf")

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
        return "bool_"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float64"
    return "json"


def arrow_table(header: Mapping[str, Any], records: Sequence[BaseModel]) -> pa.Table:
    """Records as an Arrow table: scalar columns typed, other columns as JSON strings.

    The header (with the names of the JSON columns added) is kept in the schema metadata.
    """
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
    return pa.table(columns).replace_schema_metadata({_META: json.dumps(meta).encode()})


def table_rows(table: pa.Table) -> tuple[dict[str, Any], list[Any]]:
    """The header and the rows of a table written by `arrow_table` (JSON columns decoded)."""
    meta = (table.schema.metadata or {}).get(_META)
    if meta is None:
        raise ValueError("no kura_stream checkpoint metadata")
    header: dict[str, Any] = json.loads(meta)
    rows = table.to_pylist()
    for name in header.get("json_columns", []):
        for row in rows:
            row[name] = json.loads(row[name])
    return header, rows


class CheckpointStore:
    """One checkpoint per stage in a folder: JSONL, Parquet, or an HF dataset (save_to_disk).

    The checkpoint carries its input key (JSONL: a header line; Parquet and HF: the Arrow
    schema metadata) with the record type and SCHEMA_VERSION. `load` returns records only
    when all of them match: a checkpoint for other input is a miss, logged, never a stale
    answer. Writes go to a temp file (HF: a temp folder) that is renamed into place, so a
    crash leaves the old checkpoint or the new one. A store made with `enabled=False` reads
    and writes nothing (Kura's switch).
    """

    def __init__(
        self, directory: str | Path, format: Format = "jsonl", *, enabled: bool = True
    ) -> None:
        """Create the store (the folder is created on first save).

        Args:
            directory: Folder of the checkpoints.
            format: "jsonl" (one JSON record a line), "parquet" (pyarrow) or "hf" (a Hugging
                Face dataset folder per stage, written by save_to_disk).
            enabled: When False, `load` always misses and `save` writes nothing.
        """
        if format not in FORMATS:
            raise ValueError(f"unknown checkpoint format {format!r}")
        self.directory = Path(directory)
        self.format: Format = format
        self.enabled = enabled
        self.compression: str | None = "snappy"
        """Parquet codec (pyarrow's default)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.directory)!r}, format={self.format!r},"
            f" enabled={self.enabled})"
        )

    def path(self, stage: str) -> Path:
        """The checkpoint of a stage: <stage>.jsonl, <stage>.parquet, or a folder <stage>."""
        if not _STAGE.match(stage):
            raise ValueError(f"stage name {stage!r} is not a safe file name")
        if self.format == "hf":
            return self.directory / stage
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
            The checkpoint's path (not written when the store is disabled).
        """
        kinds = {type(r).__name__ for r in records}
        if len(kinds) > 1:
            raise ValueError(f"records of several types: {sorted(kinds)}")
        model = kinds.pop() if kinds else ""
        path = self.path(stage)
        if not self.enabled:
            return path
        self.directory.mkdir(parents=True, exist_ok=True)
        header = self._header(stage, input_key, model, len(records))
        if self.format == "jsonl":
            with _atomic(path, "w") as f:
                f.write(json.dumps({"_checkpoint": header}) + "\n")
                for r in records:
                    f.write(r.model_dump_json() + "\n")
        elif self.format == "parquet":
            with _atomic(path, "wb") as f:
                pq.write_table(arrow_table(header, records), f, compression=self.compression)
        else:
            from kura_stream.checkpoints.hf import save_dataset

            save_dataset(path, arrow_table(header, records))
        logger.info("checkpoint %s: %d records saved to %s", stage, len(records), path)
        return path

    def _read(self, stage: str) -> tuple[dict[str, Any], list[Any]] | None:
        """The header and raw rows of a stage's checkpoint; None if absent or unreadable."""
        path = self.path(stage)
        if not self.enabled or not path.exists():
            return None
        try:
            if self.format == "jsonl":
                return self._load_jsonl(path)
            if self.format == "parquet":
                return table_rows(pq.read_table(path))
            from kura_stream.checkpoints.hf import load_dataset_table

            return table_rows(load_dataset_table(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("checkpoint %s unreadable (%s): miss", path, exc)
            return None

    def load(self, stage: str, input_key: str, model_type: type[M]) -> list[M] | None:
        """The stage's records if its checkpoint was made from this input, else None.

        Args:
            stage: The stage name.
            input_key: Key of the current input (module function input_key).
            model_type: The record type to validate the records against.

        Returns:
            The records (possibly an empty list), or None on a miss: no file, other input,
            another record type or schema version, a file that does not read back, or a
            disabled store.
        """
        read = self._read(stage)
        if read is None:
            return None
        header, rows = read
        path = self.path(stage)
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
        records = self._validate(path, header, rows, model_type)
        if records is not None:
            logger.info("checkpoint %s: %d records reused", stage, len(records))
        return records

    def read(self, stage: str, model_type: type[M]) -> list[M] | None:
        """The stage's records whatever input made them (for a person looking at results).

        The pipeline never calls this; it calls `load`, which checks the input.

        Returns:
            The records, or None: no checkpoint, unreadable, other record type, disabled.
        """
        read = self._read(stage)
        if read is None:
            return None
        header, rows = read
        return self._validate(self.path(stage), header, rows, model_type)

    @staticmethod
    def _validate(
        path: Path, header: Mapping[str, Any], rows: list[Any], model_type: type[M]
    ) -> list[M] | None:
        if len(rows) != header.get("count"):
            logger.warning(
                "checkpoint %s holds %d of %s records: miss", path, len(rows), header.get("count")
            )
            return None
        try:
            return [model_type.model_validate(row) for row in rows]
        except ValidationError as exc:
            logger.warning("checkpoint %s does not validate (%s): miss", path, exc.error_count())
            return None

    def stages(self) -> list[str]:
        """The stages that have a checkpoint here, sorted (none when disabled)."""
        if not self.enabled or not self.directory.is_dir():
            return []
        if self.format == "hf":
            found = [p.name for p in self.directory.iterdir() if p.is_dir()]
        else:
            found = [p.stem for p in self.directory.glob(f"*.{self.format}")]
        return sorted(s for s in found if _STAGE.match(s))

    def delete(self, stage: str) -> bool:
        """Remove a stage's checkpoint; True if there was one."""
        path = self.path(stage)
        if not self.enabled or not path.exists():
            return False
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        return True

    @staticmethod
    def _load_jsonl(path: Path) -> tuple[dict[str, Any], list[Any]]:
        with path.open() as f:
            first = f.readline()
            header = json.loads(first)["_checkpoint"] if first else {}
            rows = [json.loads(line) for line in f if line.strip()]
        return header, rows
