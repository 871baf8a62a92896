"""Kura's checkpoint managers and disk cache by name: Kura's arguments, our input checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kura_stream.cache import DiskCacheStrategy
from kura_stream.checkpoints import (
    CheckpointStore,
    HFDatasetCheckpointManager,
    JSONLCheckpointManager,
    MultiCheckpointManager,
    ParquetCheckpointManager,
)
from kura_stream.types import Cluster

CLUSTERS = [
    Cluster(id="a", name="Debug code", count=3, x=0.5, y=-1.0),
    Cluster(id="b", name="Plan trips", count=2, parent_id="a", level=1),
]


def managers(tmp_path: Path) -> list[CheckpointStore]:
    return [
        JSONLCheckpointManager(str(tmp_path / "j")),
        ParquetCheckpointManager(str(tmp_path / "p"), compression="zstd"),
        HFDatasetCheckpointManager(str(tmp_path / "h")),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_manager_is_input_aware_and_speaks_kura(tmp_path: Path, index: int) -> None:
    manager = managers(tmp_path)[index]
    assert manager.directory.is_dir()  # Kura creates the folder when enabled
    manager.save("meta_clusters", "key1", CLUSTERS)
    assert manager.load("meta_clusters", "key1", Cluster) == CLUSTERS
    assert manager.load("meta_clusters", "other input", Cluster) is None
    # Kura's own methods read what is there; a Kura-style save is never reused by the pipeline
    assert manager.load_checkpoint("meta_clusters", Cluster) == CLUSTERS
    manager.save_checkpoint("clusters", CLUSTERS[:1])
    assert manager.load_checkpoint("clusters.jsonl", Cluster) == CLUSTERS[:1]
    assert manager.load("clusters", "", Cluster) == CLUSTERS[:1]
    assert manager.list_checkpoints() == ["clusters", "meta_clusters"]
    assert manager.get_checkpoint_path("clusters").exists()
    assert manager.delete_checkpoint("clusters") is True
    assert manager.list_checkpoints() == ["meta_clusters"]


def test_disabled_manager_reads_and_writes_nothing(tmp_path: Path) -> None:
    manager = JSONLCheckpointManager(tmp_path / "off", enabled=False)
    manager.save("summaries", "k", CLUSTERS)
    assert not (tmp_path / "off").exists()
    assert manager.load("summaries", "k", Cluster) is None
    assert manager.list_checkpoints() == []


def test_hub_push_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError, match="local"):
        HFDatasetCheckpointManager(tmp_path, hub_repo="me/ckpt")


def test_multi_saves_to_all_and_loads_the_first_found(tmp_path: Path) -> None:
    jsonl, parquet, _ = managers(tmp_path)
    multi = MultiCheckpointManager([jsonl, parquet])
    multi.save("clusters", "k", CLUSTERS)
    assert jsonl.load("clusters", "k", Cluster) == parquet.load("clusters", "k", Cluster)
    jsonl.delete("clusters")
    assert multi.load("clusters", "k", Cluster) == CLUSTERS  # first found: parquet
    priority = MultiCheckpointManager([jsonl, parquet], load_strategy="priority")
    assert priority.load("clusters", "k", Cluster) is None  # only the first is asked
    primary = MultiCheckpointManager([jsonl, parquet], save_strategy="primary_only")
    primary.save("summaries", "k", CLUSTERS)
    assert multi.stages() == ["clusters", "summaries"]
    assert parquet.stages() == ["clusters"]
    with pytest.raises(ValueError, match="at least one"):
        MultiCheckpointManager([])


def test_disk_cache_strategy_keeps_json_values(tmp_path: Path) -> None:
    cache = DiskCacheStrategy(cache_dir=str(tmp_path / ".summary"))
    cache.set("k", {"summary": "x", "n": [1, 2]})
    assert cache.get("k") == {"summary": "x", "n": [1, 2]}
    assert cache.get("missing") is None
    cache.close()
    assert DiskCacheStrategy(tmp_path / ".summary").get("k") == {"summary": "x", "n": [1, 2]}
