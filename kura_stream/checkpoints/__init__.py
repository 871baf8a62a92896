"""Stage checkpoints keyed by their input, and Kura's checkpoint managers by name."""

from kura_stream.checkpoints.kura import (
    HF_DATASETS_AVAILABLE,
    PARQUET_AVAILABLE,
    HFDatasetCheckpointManager,
    JSONLCheckpointManager,
    MultiCheckpointManager,
    ParquetCheckpointManager,
)
from kura_stream.checkpoints.store import FORMATS, CheckpointStore, Format, input_key

BaseCheckpointManager = CheckpointStore
"""Kura's base class name: every manager here is a CheckpointStore."""

__all__ = [
    "FORMATS",
    "HF_DATASETS_AVAILABLE",
    "PARQUET_AVAILABLE",
    "BaseCheckpointManager",
    "CheckpointStore",
    "Format",
    "HFDatasetCheckpointManager",
    "JSONLCheckpointManager",
    "MultiCheckpointManager",
    "ParquetCheckpointManager",
    "input_key",
]
