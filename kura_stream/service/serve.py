"""`kura-stream serve`: the consumers, the scheduler and the HTTP API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Generator

import uvicorn

from kura_stream.adapters.kafka_client import (
    RETRY_BACKOFF_MS,
    aiokafka_kwargs,
    consumer_lag,
    ensure_topics,
    start_group_at_end,
    topic_record_count,
)
from kura_stream.bootstrap import (
    Insight,
    build_embedder,
    build_insight,
    build_store,
    limit_blas_threads,
)
from kura_stream.service import read_model
from kura_stream.service.assigner import Assigner
from kura_stream.service.http_api import make_http_app
from kura_stream.service.runtime import Runtime
from kura_stream.settings import Settings
from kura_stream.stages.assign import AssignParams

logger = logging.getLogger(__name__)

PARTS = ("summarise", "assign", "name", "commands")
"""The consumers `serve` can run; each is also runnable alone (with a Qdrant server store)."""


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


def build_runtime(settings: Settings, *, offline: bool, insight: Insight | None = None) -> Runtime:
    """Everything the consumers need, from settings."""
    from consumers._kafka import make_broker

    if insight is None:
        embedder = build_embedder(settings, service=True)
        insight = build_insight(settings, offline=offline, embedder=embedder)
        close = getattr(embedder, "close", None)
        closers = [close] if close is not None else []
    else:
        closers = []
    warm_up = getattr(insight.summariser, "warm_up", None)
    if warm_up is not None:
        started = time.perf_counter()
        warm_up()
        logger.info("summariser warmed up in %.1fs", time.perf_counter() - started)
    store = build_store(settings, insight.embedder.dim)
    assigner = Assigner(
        store,
        assign_params(settings),
        min_size_shown=settings.clustering.min_cluster_size_shown,
    )
    return Runtime(
        settings=settings,
        broker=make_broker(settings.kafka),
        store=store,
        embedder=insight.embedder,
        summarise=insight.summariser.summarise,
        summarise_batch=getattr(insight.summariser, "summarise_batch", None),
        permanent_errors=insight.permanent_errors,
        namer=insight.namer,
        parent_namer=insight.parent_namer,
        background_namer=insight.background_namer,
        hierarchy_grouping=insight.hierarchy_grouping,
        assigner=assigner,
        closers=closers,
        duplicates=assigner.duplicates_stored,
    )


async def prepare_topics(settings: Settings) -> None:
    """Create missing topics (embedded: one partition); a new commands group starts at the end."""
    k = settings.kafka
    kwargs = aiokafka_kwargs(k)
    many = [k.topic_conversations, k.topic_dlq, k.topic_assignments, k.topic_cluster_events]
    await ensure_topics(k.bootstrap, many, k.partitions, client_kwargs=kwargs)
    await ensure_topics(k.bootstrap, [k.topic_embedded, k.topic_commands], 1, client_kwargs=kwargs)
    # Commands sent once the service is up must never be skipped by a group still joining.
    await start_group_at_end(
        k.bootstrap, f"{k.group_id}-commands", k.topic_commands, client_kwargs=kwargs
    )


def register(rt: Runtime, parts: Collection[str]) -> None:
    """Subscribe the chosen consumers on the runtime's broker."""
    from consumers import assign, name, recompute, summarise_embed

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    modules = {"summarise": summarise_embed, "assign": assign, "name": name, "commands": recompute}
    for part in PARTS:
        if part in parts:
            modules[part].register(rt)


class _HttpServer(uvicorn.Server):
    """uvicorn, minus its signal handling: `serve` owns SIGTERM and SIGINT.

    uvicorn re-raises the signal it captured once it has stopped, which killed the process
    before the broker's in-flight batches were finished and committed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave the process's signal handlers alone."""
        yield


def _stop_on_signals(server: uvicorn.Server) -> None:
    """SIGTERM and SIGINT stop the HTTP server; `serve` then shuts the rest down in order."""

    def stop() -> None:
        logger.info("stopping: finishing in-flight batches")
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
        except (RuntimeError, ValueError):  # not the main thread (serve() inside a test)
            return


LAG_EVERY_S = 5.0
"""How often the lag monitor asks the broker, while it answers."""
LAG_BACKOFF_MAX_S = 30.0
"""While the broker does not answer, the lag monitor's pause doubles up to this."""


async def _every(
    seconds: float, job: Callable[[], Awaitable[None]], *, max_seconds: float | None = None
) -> None:
    """Run job every `seconds`; after each failure in a row the pause doubles, to max_seconds."""
    pause = seconds
    while True:
        try:
            await job()
            pause = seconds
        except Exception as err:  # a monitor must never take the service down
            logger.debug("periodic job failed: %r", err)
            pause = min(pause * 2, max_seconds or seconds)
        await asyncio.sleep(pause)


async def serve(
    settings: Settings,
    *,
    offline: bool,
    parts: Collection[str] = PARTS,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT: consumers, recompute scheduler, monitors and the HTTP API.

    On a signal the HTTP server stops, then the broker stops its subscribers gracefully (the
    batch in flight finishes and commits), then the store is closed.
    """
    from consumers.recompute import recompute_scheduler, request_recompute, start_recompute

    limit_blas_threads()
    await prepare_topics(settings)
    rt = build_runtime(settings, offline=offline)
    k = settings.kafka
    rt.dead_letters = await topic_record_count(
        k.bootstrap, k.topic_dlq, client_kwargs=aiokafka_kwargs(k)
    )
    register(rt, parts)
    await rt.broker.start()
    kafka = settings.kafka

    async def lag() -> None:
        try:
            rt.lag = await consumer_lag(
                kafka.bootstrap,
                f"{kafka.group_id}-summarise",
                kafka.topic_conversations,
                client_kwargs=aiokafka_kwargs(kafka),
            )
        except Exception as err:
            if rt.broker_ok:  # one line when it goes down, not one per check
                logger.warning(
                    "kafka unreachable (%r): /health reads degraded; consumers retry every %.0fs",
                    err, RETRY_BACKOFF_MS / 1000,
                )  # fmt: skip
            rt.broker_ok = False
            raise
        if not rt.broker_ok:
            logger.info("kafka answers again: /health reads ok")
        rt.broker_ok = True

    async def history() -> None:
        read_model.sample_history(rt)

    tasks = [
        asyncio.create_task(_every(LAG_EVERY_S, lag, max_seconds=LAG_BACKOFF_MAX_S)),
        asyncio.create_task(_every(10.0, history)),
    ]
    if "commands" in parts:
        tasks.append(asyncio.create_task(recompute_scheduler(rt)))
    # With the commands consumer here, POST /recompute goes through the commands topic, so a
    # requested recompute survives a crash of the service; otherwise it runs in-process.
    launch = request_recompute if "commands" in parts else start_recompute
    app = make_http_app(rt, start_recompute=launch)
    server = _HttpServer(
        uvicorn.Config(
            app,
            host=settings.service.host,
            port=settings.service.port,
            log_level="warning",
            lifespan="off",
        )
    )
    logger.info(
        "serving on http://%s:%d (parts: %s)",
        settings.service.host,
        settings.service.port,
        ", ".join(p for p in PARTS if p in parts),
    )
    _stop_on_signals(server)
    if ready is not None:
        ready.set()
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rt.broker.stop()
        rt.store.close()
        for close in rt.closers:
            close()
        logger.info("stopped: in-flight batches finished and committed")
