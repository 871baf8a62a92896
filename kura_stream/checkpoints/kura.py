"""Kura's checkpoint managers by name: JSONL, Parquet, HF datasets and Multi, input-aware.

Each is a CheckpointStore, so the pipeline reuses a checkpoint only for the input that made
it. Kura's own methods (load_checkpoint, save_checkpoint, list_checkpoints, ...) are kept for
code that calls them directly; they read what is there, whatever input made it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from kura_stream.checkpoints.store import CheckpointStore, Format, M

logger = logging.getLogger(__name__)

PARQUET_AVAILABLE = True
"""pyarrow is a dependency of kura-stream."""
HF_DATASETS_AVAILABLE = importlib.util.find_spec("datasets") is not None
"""The `datasets` package (kura-stream[hf]) is installed."""

_SUFFIXES = (".jsonl", ".parquet")

UNKNOWN_INPUT = ""
"""Input key of a checkpoint written by save_checkpoint, which is not told the input: the
pipeline never reuses it (it always knows its input), a person can still read it."""


def _stage(filename: str) -> str:
    """Kura's checkpoint file name ("summaries" or "summaries.jsonl") as a stage name."""
    for suffix in _SUFFIXES:
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return filename


class _KuraMethods(CheckpointStore):
    """Kura's BaseCheckpointManager methods over a CheckpointStore."""

    def __init__(self, checkpoint_dir: str | Path, format: Format, *, enabled: bool) -> None:
        super().__init__(checkpoint_dir, format, enabled=enabled)
        if enabled:
            self.setup_checkpoint_dir()

    @property
    def checkpoint_dir(self) -> Path:
        """Kura's name for the folder."""
        return self.directory

    def setup_checkpoint_dir(self) -> None:
        """Create the folder (Kura does at construction when enabled)."""
        self.directory.mkdir(parents=True, exist_ok=True)

    def is_enabled(self) -> bool:
        """Whether checkpoints are read and written."""
        return self.enabled

    def get_checkpoint_path(self, filename: str) -> Path:
        """Where the checkpoint of `filename` (e.g. "meta_clusters") lives."""
        return self.path(_stage(filename))

    def load_checkpoint(self, filename: str, model_class: type[M], **kwargs: Any) -> list[M] | None:
        """Kura's load: the records there, whatever input made them; None if none or empty."""
        return self.read(_stage(filename), model_class) or None

    def save_checkpoint(self, filename: str, data: Sequence[BaseModel], **kwargs: Any) -> None:
        """Kura's save. The input is unknown here, so the pipeline will not reuse it."""
        self.save(_stage(filename), UNKNOWN_INPUT, data)

    def list_checkpoints(self) -> list[str]:
        """The stages with a checkpoint."""
        return self.stages()

    def delete_checkpoint(self, filename: str) -> bool:
        """Remove a checkpoint; True if there was one."""
        return self.delete(_stage(filename))


class JSONLCheckpointManager(_KuraMethods):
    """Kura's JSONL checkpoints: <dir>/<stage>.jsonl, a header line then one record a line."""

    def __init__(self, checkpoint_dir: str | Path, *, enabled: bool = True) -> None:
        """Create the manager (and its folder, when enabled)."""
        super().__init__(checkpoint_dir, "jsonl", enabled=enabled)


class ParquetCheckpointManager(_KuraMethods):
    """Kura's Parquet checkpoints: <dir>/<stage>.parquet, the header in the schema metadata."""

    def __init__(
        self, checkpoint_dir: str | Path, *, enabled: bool = True, compression: str = "snappy"
    ) -> None:
        """Create the manager; `compression` is the Parquet codec (snappy, gzip, zstd, ...)."""
        super().__init__(checkpoint_dir, "parquet", enabled=enabled)
        self.compression = compression


class HFDatasetCheckpointManager(_KuraMethods):
    """Kura's Hugging Face dataset checkpoints: a save_to_disk folder per stage.

    Pushing to the Hub (hub_repo, hub_token) is not supported: checkpoints stay local, and
    kura-stream never sends conversations anywhere unasked. `streaming` and `compression`
    are accepted and change nothing, as in Kura (load_from_disk memory-maps the Arrow files).
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        *,
        enabled: bool = True,
        hub_repo: str | None = None,
        hub_token: str | None = None,
        streaming: bool = False,
        compression: str | None = "gzip",
    ) -> None:
        """Create the manager (and its folder, when enabled).

        Raises:
            ImportError: `datasets` is not installed.
            NotImplementedError: hub_repo or hub_token is given.
        """
        if not HF_DATASETS_AVAILABLE:
            raise ImportError("HFDatasetCheckpointManager needs: pip install 'kura-stream[hf]'")
        if hub_repo is not None or hub_token is not None:
            raise NotImplementedError(
                "kura-stream keeps checkpoints local; push the folder to the Hub yourself"
            )
        super().__init__(checkpoint_dir, "hf", enabled=enabled)
        self.streaming = streaming
        self.hf_compression = compression


class MultiCheckpointManager(CheckpointStore):
    """Several managers as one: save to all (or the first), load from the first that has it."""

    def __init__(
        self,
        managers: Sequence[CheckpointStore],
        *,
        save_strategy: Literal["all_enabled", "primary_only"] = "all_enabled",
        load_strategy: Literal["first_found", "priority"] = "first_found",
    ) -> None:
        """Coordinate `managers` (at least one).

        Args:
            managers: The managers, in priority order.
            save_strategy: "all_enabled" saves to every enabled manager; "primary_only" to
                the first enabled one.
            load_strategy: "first_found" loads from the first enabled manager that has a
                matching checkpoint; "priority" asks only the first enabled one.
        """
        if not managers:
            raise ValueError("MultiCheckpointManager needs at least one manager")
        if save_strategy not in ("all_enabled", "primary_only"):
            raise ValueError(f"unknown save_strategy {save_strategy!r}")
        if load_strategy not in ("first_found", "priority"):
            raise ValueError(f"unknown load_strategy {load_strategy!r}")
        first = managers[0]
        super().__init__(first.directory, first.format, enabled=any(m.enabled for m in managers))
        self.managers = list(managers)
        self.save_strategy = save_strategy
        self.load_strategy = load_strategy

    def _enabled(self, strategy_one: bool) -> list[CheckpointStore]:
        on = [m for m in self.managers if m.enabled]
        return on[:1] if strategy_one else on

    def save(self, stage: str, input_key: str, records: Sequence[BaseModel]) -> Path:
        """Save with each manager the save strategy picks; returns the first one's path."""
        paths = [
            m.save(stage, input_key, records)
            for m in self._enabled(self.save_strategy == "primary_only")
        ]
        return paths[0] if paths else self.managers[0].path(stage)

    def load(self, stage: str, input_key: str, model_type: type[M]) -> list[M] | None:
        """The first matching checkpoint among the managers the load strategy asks."""
        for m in self._enabled(self.load_strategy == "priority"):
            found = m.load(stage, input_key, model_type)
            if found is not None:
                return found
        return None

    def read(self, stage: str, model_type: type[M]) -> list[M] | None:
        """The first checkpoint of the stage among the managers, whatever input made it."""
        for m in self._enabled(self.load_strategy == "priority"):
            found = m.read(stage, model_type)
            if found is not None:
                return found
        return None

    def stages(self) -> list[str]:
        """Stages checkpointed by any enabled manager."""
        return sorted({s for m in self._enabled(False) for s in m.stages()})

    def delete(self, stage: str) -> bool:
        """Delete the stage from every enabled manager; True if any had it."""
        return any([m.delete(stage) for m in self._enabled(False)])

    def load_checkpoint(self, filename: str, model_class: type[M], **kwargs: Any) -> list[M] | None:
        """Kura's load (see _KuraMethods.load_checkpoint)."""
        return self.read(_stage(filename), model_class) or None

    def save_checkpoint(self, filename: str, data: Sequence[BaseModel], **kwargs: Any) -> None:
        """Kura's save (the pipeline will not reuse it: the input is unknown here)."""
        self.save(_stage(filename), UNKNOWN_INPUT, data)

    def get_checkpoint_path(self, filename: str) -> Path:
        """The path of the first manager."""
        return self.managers[0].path(_stage(filename))

    def list_checkpoints(self) -> list[str]:
        """Kura's name for `stages`."""
        return self.stages()
