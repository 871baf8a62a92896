"""The streaming service's use cases, as the composition root wires them for the entry points.

`StreamService` is a process that assigns (it holds the store); `IngestService` is an ingest
worker (`serve --role ingest`): summarise and embed only, with no store, so several of them
can run beside the one process that holds the embedded store.

Nothing here is mutable state of its own: counters and health live in `metrics`, the
clustering state in `assigner`, recompute requests in `recomputer`. The consumers receive
each collaborator through FastStream's context; the HTTP API reads them from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from kura_stream.protocols import ClusterStore
from kura_stream.service.assigner import Assigner
from kura_stream.service.ingest import Ingestor
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.name_step import ClusterNaming
from kura_stream.service.outputs import Outputs
from kura_stream.service.recompute_runner import Recomputer
from kura_stream.settings import Settings


@dataclass(frozen=True)
class StreamService:
    """The use cases of one running service and what they share.

    Attributes:
        settings: The configuration.
        store: Conversations and clusters.
        assigner: Incremental clustering over the store (the assign use case).
        ingestor: Parse, scrub, summarise and embed (the summarise use case).
        naming: Names due clusters (the name use case).
        recomputer: Recomputes, their schedule and renames.
        metrics: Counters and health: what /status and /metrics read.
        write_lock: Serialises the store writes of the assigner, naming, recomputes, exports.
        outputs: The output topics.
        closers: Called once when the service stops (an embedding worker's shutdown).
    """

    settings: Settings
    store: ClusterStore
    assigner: Assigner
    ingestor: Ingestor
    naming: ClusterNaming
    recomputer: Recomputer
    metrics: ServiceMetrics
    write_lock: asyncio.Lock
    outputs: Outputs
    closers: list[Callable[[], None]] = field(default_factory=list)

    def context(self) -> dict[str, object]:
        """The collaborators the consumers take from FastStream's context, by key."""
        return {
            "ingestor": self.ingestor,
            "assigner": self.assigner,
            "naming": self.naming,
            "recomputer": self.recomputer,
            "metrics": self.metrics,
            "write_lock": self.write_lock,
            "outputs": self.outputs,
        }

    def close(self) -> None:
        """Release the store and the embedding worker (once the consumers have stopped).

        The assigner's state is saved for a quick restart unless a recompute is unfinished
        (it may have moved stored conversations the state does not know of yet).
        """
        if self.recomputer.settled:
            self.assigner.close()
        self.store.close()
        for close in self.closers:
            close()


@dataclass(frozen=True)
class IngestService:
    """The use case of an ingest worker: summarise and embed, without the store.

    Attributes:
        settings: The configuration.
        ingestor: Parse, scrub, summarise and embed (the summarise use case).
        metrics: Counters and health: what /metrics and /health read.
        outputs: The output topics.
        closers: Called once when the worker stops (an embedding worker's shutdown).
    """

    settings: Settings
    ingestor: Ingestor
    metrics: ServiceMetrics
    outputs: Outputs
    closers: list[Callable[[], None]] = field(default_factory=list)

    def context(self) -> dict[str, object]:
        """The collaborators the summarise consumer takes from FastStream's context, by key."""
        return {"ingestor": self.ingestor, "metrics": self.metrics, "outputs": self.outputs}

    def close(self) -> None:
        """Release the embedding worker (once the consumer has stopped)."""
        for close in self.closers:
            close()
