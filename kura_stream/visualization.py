"""Kura's visualization module by name: the cluster tree in the terminal, three styles.

Kura's functions print (that is their contract), so these do too; kura_stream.tree returns
the same tree as a string or a rich Tree for callers that want to place it themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from kura_stream.checkpoints import CheckpointStore
from kura_stream.tree import render_tree, rich_tree
from kura_stream.types import Cluster, ProjectedCluster

logger = logging.getLogger(__name__)

__all__ = [
    "load_clusters",
    "visualise_clusters",
    "visualise_clusters_enhanced",
    "visualise_clusters_rich",
    "visualise_from_checkpoint_manager",
    "visualise_pipeline_results",
]

Style = Literal["basic", "enhanced", "rich"]
_FIELDS = set(ProjectedCluster.model_fields)


class _Named(Protocol):
    @property
    def checkpoint_filename(self) -> str: ...


def _from_row(row: dict[str, Any]) -> ProjectedCluster:
    """A cluster from a checkpoint row: ours, or Kura's (chat_ids, x_coord, no count)."""
    data = {k: v for k, v in row.items() if k in _FIELDS and v is not None}
    data.setdefault("x", row.get("x_coord", 0.0))
    data.setdefault("y", row.get("y_coord", 0.0))
    data.setdefault("count", len(row.get("chat_ids") or ()))
    data.setdefault("description", "")
    data.setdefault("slug", "")
    return ProjectedCluster.model_validate(data)


def load_clusters(checkpoint_path: str | Path) -> list[ProjectedCluster]:
    """Clusters from a checkpoint: kura-stream's (JSONL, Parquet, HF folder) or Kura's JSONL.

    Raises:
        FileNotFoundError: Nothing is at checkpoint_path.
        ValueError: It holds no clusters that read back.
    """
    path = Path(checkpoint_path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir() or path.suffix == ".parquet":
        store = CheckpointStore(path.parent, "hf" if path.is_dir() else "parquet")
        found = store.read(path.name if path.is_dir() else path.stem, ProjectedCluster)
        if found is None:
            raise ValueError(f"{path} holds no clusters")
        return found
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [_from_row(row) for row in rows if "_checkpoint" not in row]


def _clusters(
    clusters: Sequence[Cluster] | None, checkpoint_path: str | Path | None
) -> Sequence[Cluster]:
    if clusters is not None:
        return clusters
    if checkpoint_path is None:
        raise ValueError("Either clusters or checkpoint_path must be provided")
    return load_clusters(checkpoint_path)


def _stats(clusters: Sequence[Cluster]) -> list[tuple[str, str]]:
    ids = {c.id for c in clusters}
    roots = [c for c in clusters if c.parent_id is None or c.parent_id not in ids]
    total = sum(c.count for c in roots)
    average = total / len(roots) if roots else 0.0
    return [
        ("Total clusters", f"{len(clusters):,}"),
        ("Root clusters", f"{len(roots):,}"),
        ("Total conversations", f"{total:,}"),
        ("Average conversations per root cluster", f"{average:.1f}"),
    ]


def visualise_clusters(
    clusters: Sequence[Cluster] | None = None,
    *,
    checkpoint_path: str | Path | None = None,
    min_size_shown: int = 1,
) -> None:
    """Print the cluster tree (Kura's basic style), largest first at every level.

    Args:
        clusters: Clusters of all levels; or None and checkpoint_path.
        checkpoint_path: A checkpoint file or folder to read the clusters from.
        min_size_shown: Clusters with fewer conversations show no name (Clio's privacy
            floor); 1 shows all, as Kura does.
    """
    print(render_tree(_clusters(clusters, checkpoint_path), min_size_shown))


def visualise_clusters_enhanced(
    clusters: Sequence[Cluster] | None = None,
    *,
    checkpoint_path: str | Path | None = None,
    min_size_shown: int = 1,
) -> None:
    """Print the tree with a title and Kura's cluster statistics (Kura's enhanced style)."""
    found = _clusters(clusters, checkpoint_path)
    rule = "=" * 80
    print(f"{rule}\nCLUSTER TREE\n{rule}")
    print(render_tree(found, min_size_shown))
    print(f"{rule}\nCLUSTER STATISTICS\n{rule}")
    for label, value in _stats(found):
        print(f"{label}: {value}")
    print(rule)


def visualise_clusters_rich(
    clusters: Sequence[Cluster] | None = None,
    *,
    checkpoint_path: str | Path | None = None,
    console: Console | None = None,
    min_size_shown: int = 1,
) -> None:
    """Print the tree and the statistics with rich (Kura's rich style)."""
    found = _clusters(clusters, checkpoint_path)
    out = console or Console()
    out.print(Rule("Clusters"))
    out.print(rich_tree(found, min_size_shown))
    table = Table(title="Cluster statistics")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for label, value in _stats(found):
        table.add_row(label, value)
    out.print(table)


def _show(
    style: str,
    clusters: Sequence[Cluster] | None,
    checkpoint_path: str | Path | None,
    console: Console | None,
) -> None:
    if style == "basic":
        visualise_clusters(clusters, checkpoint_path=checkpoint_path)
    elif style == "enhanced":
        visualise_clusters_enhanced(clusters, checkpoint_path=checkpoint_path)
    elif style == "rich":
        visualise_clusters_rich(clusters, checkpoint_path=checkpoint_path, console=console)
    else:
        raise ValueError(f"Invalid style '{style}'. Must be one of: basic, enhanced, rich")


def visualise_from_checkpoint_manager(
    checkpoint_manager: CheckpointStore,
    meta_cluster_model: _Named,
    *,
    style: Style = "basic",
    console: Console | None = None,
) -> None:
    """Print the clusters of the meta-clustering checkpoint (whatever input made it)."""
    stage = meta_cluster_model.checkpoint_filename
    found = checkpoint_manager.read(stage, ProjectedCluster)
    if found is None:
        raise FileNotFoundError(f"no {stage} checkpoint in {checkpoint_manager.directory}")
    _show(style, found, None, console)


def visualise_pipeline_results(
    clusters: Sequence[Cluster],
    *,
    style: Style = "enhanced",
    console: Console | None = None,
) -> None:
    """Print the clusters a pipeline returned, in one of Kura's styles."""
    _show(style, clusters, None, console)
