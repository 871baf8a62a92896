"""Export what a cluster store holds, as `batch --out` does (used by `kura-stream export`)."""

from __future__ import annotations

from pathlib import Path

from kura_stream.export import ExportPaths, export_batch
from kura_stream.protocols import ClusterStore
from kura_stream.service.read_model import cluster_view
from kura_stream.types import Cluster, Summary


def export_store(store: ClusterStore, dest: Path, *, min_size_shown: int) -> ExportPaths:
    """Write clusters.json, assignments.jsonl, summaries.jsonl and Kura's files from a store."""
    clusters = [
        Cluster.model_validate(
            cluster_view(c, min_size_shown=0).model_dump(
                include={
                    "id",
                    "name",
                    "description",
                    "slug",
                    "count",
                    "parent_id",
                    "level",
                    "x",
                    "y",
                }
            )
        )
        for c in store.list_clusters()
    ]
    assignments: dict[str, str | None] = {}
    summaries: list[Summary] = []
    for batch in store.iter_conversations(batch_size=2000):
        for p in batch:
            assignments[p.chat_id] = p.cluster_id
            data = p.payload.get("summary")
            if isinstance(data, dict):
                summaries.append(Summary.model_validate(data))
    return export_batch(
        dest,
        clusters=clusters,
        assignments=assignments,
        summaries=summaries,
        min_size_shown=min_size_shown,
    )
