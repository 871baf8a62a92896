"""The batch pipeline behind `kura-stream batch`: Kura's stages over a file, with timings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kura_stream import api
from kura_stream.bootstrap import Insight
from kura_stream.cache import Cache
from kura_stream.checkpoints import CheckpointStore, input_key
from kura_stream.export import ExportPaths, export_batch, export_paths
from kura_stream.privacy import keep_metadata
from kura_stream.timing import timed
from kura_stream.types import Cluster, Conversation, Summary

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total)."""


def _export_once(
    out: Path,
    clusters: Sequence[Cluster],
    assignments: dict[str, str | None],
    summaries: Sequence[Summary],
    conversations: Sequence[Conversation],
    min_size_shown: int,
) -> ExportPaths:
    """Export (scrubbing every text), unless `out` already holds this very export."""
    key = input_key(
        records=[*clusters, *summaries, *conversations],
        params={"assignments": [f"{k}={v or ''}" for k, v in sorted(assignments.items())],
                "min_size_shown": min_size_shown},
    )  # fmt: skip
    marker = out / ".export-key"
    paths = export_paths(out)
    if marker.exists() and marker.read_text() == key and paths.clusters.exists():
        logger.info("export in %s is current; not rewritten", out)
        return paths
    paths = export_batch(
        out,
        clusters=clusters,
        assignments=assignments,
        summaries=summaries,
        conversations=conversations,
        min_size_shown=min_size_shown,
    )
    marker.write_text(key)
    return paths


@dataclass
class BatchResult:
    """What a batch run produced, and how long each stage took (seconds)."""

    summaries: list[Summary]
    clusters: list[Cluster]
    assignments: dict[str, str | None]
    failures: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    paths: ExportPaths | None = None


async def run_batch(
    conversations: Sequence[Conversation],
    *,
    insight: Insight,
    out: Path,
    cache_path: Path,
    min_size_shown: int,
    max_top: int = 10,
    k: int | Literal["auto"] | None = "auto",
    concurrency: int = 2,
    checkpoint_format: Literal["jsonl", "parquet"] = "jsonl",
    progress: Progress | None = None,
    metadata_keys: Collection[str] = (),
) -> BatchResult:
    """Summarise, cluster, name, build the hierarchy and the map, and export to `out`.

    k is the number of base clusters: "auto" (the default) chooses it from the data, None
    takes Kura's one per ten conversations. Only the metadata keys in `metadata_keys`
    (settings.privacy.metadata_keys) are kept; the others reach no summary or export.
    """
    conversations = [keep_metadata(c, metadata_keys) for c in conversations]
    cache = Cache(cache_path)
    checkpoints = CheckpointStore(out / "checkpoints", format=checkpoint_format)
    timings: dict[str, float] = {}
    failures: list[tuple[str, str]] = []

    def summary_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("summarise", done, total)

    with timed(timings, "summarise"):
        # Summarisers scrub what they read and what they write; checkpoints key the raw input.
        summaries = await api.summarise_conversations(
            conversations,
            model=insight.summariser,
            cache=cache,
            checkpoint_manager=checkpoints,
            concurrency=concurrency,
            progress=summary_progress,
            on_failure=failures.extend,
        )
    stages = _Stages(insight, cache, checkpoints, timings)
    base, placed = await stages.clusters(summaries, k=k, max_top=max_top, progress=progress)
    assignments: dict[str, str | None] = {s.chat_id: None for s in summaries}
    for b in base:
        for chat_id in b.chat_ids:
            assignments[chat_id] = b.id
    with timed(timings, "export"):
        paths = _export_once(out, placed, assignments, summaries, conversations, min_size_shown)
    return BatchResult(
        summaries=summaries,
        clusters=placed,
        assignments=assignments,
        failures=failures,
        timings=timings,
        paths=paths,
    )


@dataclass
class _Stages:
    """The stages after summaries, timed into `timings`, sharing one cache and checkpoints."""

    insight: Insight
    cache: Cache
    checkpoints: CheckpointStore
    timings: dict[str, float]

    async def clusters(
        self,
        summaries: list[Summary],
        *,
        k: int | Literal["auto"] | None,
        max_top: int,
        progress: Progress | None,
    ) -> tuple[list[api.BaseCluster], list[Cluster]]:
        """Base clusters (named), and every cluster of the hierarchy placed on the map."""
        insight, cache, checkpoints = self.insight, self.cache, self.checkpoints
        with timed(self.timings, "cluster+name"):
            base = await api.generate_base_clusters_from_conversation_summaries(
                summaries,
                embedder=insight.embedder,
                namer=insight.namer,
                cache=cache,
                checkpoint_manager=checkpoints,
                k=k,
            )
        if progress is not None:
            progress("cluster+name", len(base), len(base))
        with timed(self.timings, "hierarchy"):
            meta = await api.reduce_clusters_from_base_clusters(
                base,
                embedder=insight.embedder,
                parent_namer=insight.parent_namer,
                grouping=insight.hierarchy_grouping,
                summaries=summaries,
                cache=cache,
                checkpoint_manager=checkpoints,
                max_top=max_top,
            )
        with timed(self.timings, "map"):
            placed = await api.reduce_dimensionality_from_clusters(
                meta,
                embedder=insight.embedder,
                summaries=summaries,
                base_clusters=base,
                cache=cache,
                checkpoint_manager=checkpoints,
            )
        return base, placed
