"""`kura-stream serve`: every consumer, the recompute scheduler, the monitors and the HTTP API.

The composition root builds the use cases (bootstrap.build_stream); here they are put on one
FastStream broker (each consumer's router, with the use cases in the broker's context), and
run beside uvicorn until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Collection, Generator

import uvicorn
from faststream.kafka import KafkaBroker

from consumers import assign, name, recompute, summarise_embed
from consumers.http_api import make_http_app
from kura_stream.adapters.kafka_client import (
    RETRY_BACKOFF_MS,
    aiokafka_kwargs,
    consumer_lag,
    ensure_topics,
    start_group_at_end,
    topic_record_count,
)
from kura_stream.adapters.kafka_stream import KafkaOutputs, make_broker
from kura_stream.bootstrap import build_stream, limit_blas_threads
from kura_stream.service.stream import StreamService
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)

PARTS = ("summarise", "assign", "name", "commands")
"""The consumers `serve` can run; each is also runnable alone (with a Qdrant server store)."""
LAG_EVERY_S = 5.0
"""How often the lag monitor asks the broker, while it answers."""
LAG_TIMEOUT_S = 3.0
"""A lag check that takes longer than this counts as the broker not answering."""
LAG_BACKOFF_MAX_S = 30.0
"""While the broker does not answer, the lag monitor's pause doubles up to this."""


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


def include(broker: KafkaBroker, service: StreamService, parts: Collection[str]) -> None:
    """Put the chosen consumers on the broker, with the use cases in its context."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    kafka = service.settings.kafka
    routers = {
        "summarise": lambda: summarise_embed.router(
            kafka, consumers=service.settings.service.summarise_consumers
        ),
        "assign": lambda: assign.router(kafka),
        "name": lambda: name.router(kafka, background=service.naming.background_namer is not None),
        "commands": lambda: recompute.router(kafka),
    }
    modules = {"summarise": summarise_embed, "assign": assign, "name": name, "commands": recompute}
    for key, value in service.context().items():
        broker.context.set_global(key, value)
    for part in PARTS:
        if part in parts:
            broker.include_router(routers[part]())
            for key, value in modules[part].context().items():
                broker.context.set_global(key, value)


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


def _monitors(service: StreamService, parts: Collection[str]) -> list[asyncio.Task[None]]:
    """The lag monitor (backing off while the broker is away), history, the scheduler."""
    kafka = service.settings.kafka
    metrics = service.metrics

    async def lag() -> None:
        try:
            lag_now = consumer_lag(
                kafka.bootstrap,
                f"{kafka.group_id}-summarise",
                kafka.topic_conversations,
                client_kwargs=aiokafka_kwargs(kafka),
            )
            # A broker that went away can keep a client's start waiting for its request
            # timeout (40 s); /health must read degraded within a check or two.
            metrics.lag = await asyncio.wait_for(lag_now, LAG_TIMEOUT_S)
        except Exception as err:
            if metrics.broker_ok:  # one line when it goes down, not one per check
                logger.warning(
                    "kafka unreachable (%r): /health reads degraded; consumers retry every %.0fs",
                    err, RETRY_BACKOFF_MS / 1000,
                )  # fmt: skip
            metrics.broker_ok = False
            raise
        if not metrics.broker_ok:
            logger.info("kafka answers again: /health reads ok")
        metrics.broker_ok = True

    async def history() -> None:
        metrics.note_counts({c.cluster_id: c.meta.count for c in service.store.list_clusters()})

    tasks = [
        asyncio.create_task(_every(LAG_EVERY_S, lag, max_seconds=LAG_BACKOFF_MAX_S)),
        asyncio.create_task(_every(10.0, history)),
    ]
    if "commands" in parts:
        tasks.append(asyncio.create_task(service.recomputer.schedule(service.settings.clustering)))
    return tasks


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
    limit_blas_threads()
    await prepare_topics(settings)
    broker = make_broker(settings.kafka)
    service = build_stream(settings, KafkaOutputs(broker, settings.kafka), offline=offline)
    tasks: list[asyncio.Task[None]] = []
    try:  # whatever fails from here, the broker, the store and the worker are released
        k = settings.kafka
        service.metrics.dead_letters_total = await topic_record_count(
            k.bootstrap, k.topic_dlq, client_kwargs=aiokafka_kwargs(k)
        )
        include(broker, service, parts)
        await broker.start()
        tasks = _monitors(service, parts)
        server = _http_server(service, parts)
        _stop_on_signals(server)
        if ready is not None:
            ready.set()
        await server.serve()
    finally:
        await _shut_down(broker, service, tasks)


def _http_server(service: StreamService, parts: Collection[str]) -> uvicorn.Server:
    """The HTTP API under uvicorn, with serve's own signal handling."""
    settings = service.settings
    # With the commands consumer here, POST /recompute goes through the commands topic, so a
    # requested recompute survives a crash of the service; otherwise it runs in-process.
    r = service.recomputer
    app = make_http_app(service, launch=r.request if "commands" in parts else r.start_here)
    logger.info(
        "serving on http://%s:%d (parts: %s)",
        settings.service.host, settings.service.port, ", ".join(p for p in PARTS if p in parts),
    )  # fmt: skip
    return _HttpServer(
        uvicorn.Config(
            app, host=settings.service.host, port=settings.service.port, log_level="warning",
            lifespan="off",
        )
    )  # fmt: skip


async def _shut_down(
    broker: KafkaBroker, service: StreamService, tasks: list[asyncio.Task[None]]
) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await broker.stop()
    service.store.close()
    for close in service.closers:
        close()
    logger.info("stopped: in-flight batches finished and committed")
