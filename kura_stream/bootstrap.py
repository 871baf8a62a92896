"""The one composition root: Settings -> adapters -> stages -> the service's use cases."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kura_stream.adapters.blas import limit_blas_threads as limit_blas_threads
from kura_stream.privacy import warm_up as warm_up_scrubbers
from kura_stream.protocols import (
    BatchSummariser,
    Closeable,
    ClusterNamer,
    ClusterStore,
    Embedder,
    ParentNamer,
    Summariser,
    WarmsUp,
)
from kura_stream.service.assigner import Assigner
from kura_stream.service.ingest import Ingestor
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.name_step import ClusterNaming
from kura_stream.service.outputs import Outputs
from kura_stream.service.recompute import RecomputeParams
from kura_stream.service.recompute_runner import Recomputer
from kura_stream.service.stream import IngestService, StreamService
from kura_stream.settings import Settings
from kura_stream.stages.assign import AssignParams
from kura_stream.stages.summarise import summarise_window
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


def build_assigner(settings: Settings, store: ClusterStore) -> Assigner:
    """The assigner over store, resuming the state a clean shutdown saved beside it, if any."""
    from kura_stream.adapters.state_file import state_file_for

    min_size = settings.clustering.min_cluster_size_shown
    saved = state_file_for(store)
    return Assigner(store, assign_params(settings), min_size_shown=min_size, saved=saved)


def assign_params(settings: Settings) -> AssignParams:
    """Incremental clustering thresholds from settings: learnt from the stream unless fixed."""
    c = settings.clustering
    return AssignParams(
        join_similarity=c.join_similarity,
        birth_similarity=c.birth_similarity,
        min_birth_size=c.min_birth_size,
        join_margin=c.join_margin,
        join_floor=c.join_floor,
        join_z=c.join_z,
        birth_quantile=c.birth_quantile,
    )


def recompute_params(settings: Settings, insight: Insight) -> RecomputeParams:
    """How recomputes cluster, from settings and the insight's hierarchy grouping."""
    cl = settings.clustering
    return RecomputeParams(
        max_clusters=cl.recompute_max_clusters,
        fit_sample=cl.recompute_fit_sample,
        top_level=cl.top_level_clusters,
        grouping=insight.hierarchy_grouping,
        min_size_shown=cl.min_cluster_size_shown,
    )


def build_ingestor(settings: Settings, insight: Insight) -> Ingestor:
    """The summarise + embed use case over the insight's summariser and embedder."""
    summariser = insight.summariser
    return Ingestor(
        summarise=summariser.summarise,
        summarise_batch=(
            summariser.summarise_batch if isinstance(summariser, BatchSummariser) else None
        ),
        embedder=insight.embedder,
        max_bytes=settings.kafka.max_message_bytes,
        concurrency=summarise_window(summariser, settings.llm.concurrency),
        permanent_errors=insight.permanent_errors,
        metadata_keys=settings.privacy.metadata_keys,
    )


def _warmed_insight(
    settings: Settings,
    *,
    offline: bool,
    insight: Insight | None,
    closers: list[Callable[[], None]],
    summariser: bool = True,
) -> Insight:
    """The insight given, or a new one for the service; scrubbers (and summariser) warmed up."""
    if insight is None:
        embedder = build_embedder(settings, service=True)
        insight = build_insight(settings, offline=offline, embedder=embedder)
        if isinstance(embedder, Closeable):
            closers.append(embedder.close)
    started = time.perf_counter()
    warm_up_scrubbers()
    if summariser and isinstance(insight.summariser, WarmsUp):
        insight.summariser.warm_up()
    what = "scrubbers and summariser" if summariser else "scrubbers"
    logger.info("%s warmed up in %.1fs", what, time.perf_counter() - started)
    return insight


def build_ingest(
    settings: Settings, outputs: Outputs, *, offline: bool, insight: Insight | None = None
) -> IngestService:
    """An ingest worker's use case (summarise + embed); the store is never opened.

    Several ingest workers can so run beside the one process that holds the embedded store.

    Args:
        settings: Configuration.
        outputs: Where the ingestor's results are published (KafkaOutputs in the service).
        offline: Summarise without an LLM.
        insight: Reuse a summariser and embedder already built.
    """
    closers: list[Callable[[], None]] = []
    insight = _warmed_insight(settings, offline=offline, insight=insight, closers=closers)
    return IngestService(
        settings=settings,
        ingestor=build_ingestor(settings, insight),
        metrics=ServiceMetrics(),
        outputs=outputs,
        closers=closers,
    )


def build_stream(
    settings: Settings,
    outputs: Outputs,
    *,
    offline: bool,
    insight: Insight | None = None,
    summarises: bool = True,
) -> StreamService:
    """The streaming service's use cases over the configured store, embedder and models.

    Args:
        settings: Configuration.
        outputs: Where the use cases publish (KafkaOutputs in the service).
        offline: Summarise (and name) without an LLM.
        insight: Reuse a summariser, namers and embedder already built.
        summarises: Whether this process runs the summarise consumer; if not (`--role
            assign`), the summariser is not warmed up (a second or more of start-up).
    """
    closers: list[Callable[[], None]] = []
    insight = _warmed_insight(
        settings, offline=offline, insight=insight, closers=closers, summariser=summarises
    )
    store = build_store(settings, insight.embedder.dim)
    min_size = settings.clustering.min_cluster_size_shown
    assigner = build_assigner(settings, store)
    metrics = ServiceMetrics(duplicates_total=assigner.duplicates_stored)
    write_lock = asyncio.Lock()
    ingestor = build_ingestor(settings, insight)
    naming = ClusterNaming(
        store=store,
        namer=insight.namer,
        background_namer=insight.background_namer,
        min_size_shown=min_size,
        write_lock=write_lock,
        outputs=outputs,
        metrics=metrics,
    )
    recomputer = Recomputer(
        store=store,
        assigner=assigner,
        namer=insight.namer,
        parent_namer=insight.parent_namer,
        embed=insight.embedder.embed,
        params=recompute_params(settings, insight),
        outputs=outputs,
        metrics=metrics,
        write_lock=write_lock,
    )
    return StreamService(
        settings=settings,
        store=store,
        assigner=assigner,
        ingestor=ingestor,
        naming=naming,
        recomputer=recomputer,
        metrics=metrics,
        write_lock=write_lock,
        outputs=outputs,
        closers=closers,
    )
