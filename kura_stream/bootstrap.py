"""The one composition root: Settings -> adapters -> stages -> a service runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kura_stream.adapters.blas import limit_blas_threads as limit_blas_threads
from kura_stream.protocols import ClusterNamer, ClusterStore, Embedder, ParentNamer, Summariser
from kura_stream.settings import Settings
from kura_stream.types import HierarchyGrouping

if TYPE_CHECKING:
    import instructor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Insight:
    """The stages' collaborators: a summariser, namers and the embedder."""

    embedder: Embedder
    summariser: Summariser
    namer: ClusterNamer
    parent_namer: ParentNamer
    permanent_errors: tuple[type[Exception], ...]
    hierarchy_grouping: HierarchyGrouping = "names"
    """How the hierarchy forms parents: chosen by an LLM by name, or (offline, where word
    overlap stands in for judgement) grouped by centroids and only named."""
    background_namer: ClusterNamer | None = None
    """Names-only LLM mode: the LLM namer that renames offline-named clusters in the
    background (the name consumer); None: `namer` alone names."""


def build_embedder(settings: Settings, *, service: bool = False) -> Embedder:
    """The configured embedder (model files must have been fetched).

    Args:
        settings: Configuration.
        service: For `serve`, where embedder.worker_process=None means a worker process for
            minilm.
    """
    from kura_stream.adapters.embedders.factory import make_embedder

    in_worker = settings.embedder.worker_process
    if in_worker is None:
        in_worker = service and settings.embedder.kind == "minilm"
    if in_worker:
        from kura_stream.adapters.embedders.process import ProcessEmbedder

        return ProcessEmbedder(settings)
    return make_embedder(settings)


def build_insight(
    settings: Settings, *, offline: bool, embedder: Embedder | None = None
) -> Insight:
    """Summariser and namers: the LLM ones, or the offline ones that need no LLM.

    Offline with `settings.service.names == "llm"` (names-only LLM), the summariser and the
    namers stay offline and an LLM cluster namer renames clusters in the background.

    Args:
        settings: Configuration.
        offline: Summarise offline; name offline too unless service.names is "llm".
        embedder: Reuse an embedder already built.
    """
    from kura_stream.service.ingest import BadRecord
    from kura_stream.stages.summarise import SummaryError

    embedder = embedder or build_embedder(settings)
    if offline:
        from kura_stream.adapters.embedders.memo import MemoEmbedder

        # The offline summary's text is its request, which the summariser already embedded.
        embedder = MemoEmbedder(embedder)
        from kura_stream.stages.offline_namer import OfflineClusterNamer
        from kura_stream.stages.offline_parent_namer import OfflineParentNamer
        from kura_stream.stages.offline_summary import OfflineSummariser

        return Insight(
            embedder=embedder,
            summariser=OfflineSummariser(embedder=embedder),
            namer=OfflineClusterNamer(),
            parent_namer=OfflineParentNamer(),
            permanent_errors=(BadRecord, SummaryError),
            hierarchy_grouping="centroids",
            background_namer=build_llm_namer(settings) if settings.service.names == "llm" else None,
        )
    from kura_stream.adapters.llm.client import make_instructor_client
    from kura_stream.adapters.llm.namers import LLMParentNamer
    from kura_stream.adapters.llm.summariser import LLMSummariser

    client = make_instructor_client(settings.llm, mode=settings.llm.mode)
    model = settings.llm.model
    return Insight(
        embedder=embedder,
        summariser=LLMSummariser.from_settings(client, settings.llm),
        namer=build_llm_namer(settings, client=client),
        parent_namer=LLMParentNamer(client, model=model),
        permanent_errors=(BadRecord, SummaryError),
    )


def build_llm_namer(
    settings: Settings, *, client: instructor.AsyncInstructor | None = None
) -> ClusterNamer:
    """The LLM cluster namer of settings.llm (a name it refuses twice is named offline).

    Args:
        settings: Configuration.
        client: Reuse an instructor client already built.
    """
    from kura_stream.adapters.llm.client import make_instructor_client
    from kura_stream.adapters.llm.namers import LLMClusterNamer

    client = client or make_instructor_client(settings.llm, mode=settings.llm.mode)
    return LLMClusterNamer(client, model=settings.llm.model)


def build_store(settings: Settings, dim: int) -> ClusterStore:
    """The configured cluster store: a Qdrant server, or the embedded durable one."""
    from kura_stream.adapters.store_factory import open_store

    return open_store(settings.store, dim)
