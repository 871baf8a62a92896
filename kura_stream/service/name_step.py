"""Naming as the name consumer calls it: the clusters a batch of events makes due, named."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from kura_stream.protocols import ClusterNamer, ClusterStore
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.naming import clusters_to_name, name_due_clusters
from kura_stream.service.outputs import Outputs
from kura_stream.types import ClusterEvent


@dataclass(frozen=True)
class ClusterNaming:
    """Names new and grown clusters, publishing a renamed event for each name given.

    Attributes:
        store: Conversations and clusters.
        namer: Names base clusters (offline in names-only LLM mode).
        min_size_shown: Clusters smaller than this are not named.
        write_lock: Serialises the writes of the assigner, the namers and recomputes.
        outputs: Where renamed events go.
        metrics: Counts the names given.
        background_namer: Names-only LLM mode: renames what `namer` named, in the background.
    """

    store: ClusterStore
    namer: ClusterNamer
    min_size_shown: int
    write_lock: asyncio.Lock
    outputs: Outputs
    metrics: ServiceMetrics
    background_namer: ClusterNamer | None = None

    async def __call__(self, events: Sequence[ClusterEvent]) -> None:
        """Name what a batch of cluster events made due."""

        async def publish(renamed: list[ClusterEvent]) -> None:
            await self.outputs.cluster_events(renamed)
            self.metrics.renamed.inc(len(renamed))

        await name_due_clusters(
            self.store,
            clusters_to_name(events, after_recompute=self.background_namer is not None),
            namer=self.namer,
            background_namer=self.background_namer,
            min_size_shown=self.min_size_shown,
            write_lock=self.write_lock,
            publish=publish,
        )
