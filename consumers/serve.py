"""`kura-stream serve`: the consumers of one role, the recompute scheduler, monitors, HTTP API.

The composition root builds the use cases (bootstrap.build_stream, or build_ingest for an
ingest worker, which never opens the store); here they are put on one FastStream broker (each
consumer's router, with the use cases in the broker's context), and run beside uvicorn until
SIGTERM or SIGINT. Which consumers one process runs: consumers/roles.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection

import uvicorn
from faststream.kafka import KafkaBroker

from consumers import assign, name, recompute, summarise_embed
from consumers._raw import settle_heap
from consumers.http_api import make_http_app, make_ops_app
from consumers.roles import PARTS as PARTS
from consumers.roles import RoleError, check_parts, opens_store
from consumers.serve_runtime import HttpServer, monitors, stop_on_signals
from kura_stream.adapters.kafka_client import (
    aiokafka_kwargs,
    ensure_topics,
    start_group_at_end,
    topic_record_count,
)
from kura_stream.adapters.kafka_stream import KafkaOutputs, make_broker
from kura_stream.bootstrap import build_ingest, build_stream, limit_blas_threads
from kura_stream.service.stream import IngestService, StreamService
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)


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


def include(
    broker: KafkaBroker, service: StreamService | IngestService, parts: Collection[str]
) -> None:
    """Put the chosen consumers on the broker, with the use cases in its context.

    Raises:
        RoleError: an unknown part, or a part that needs the store on an ingest worker.
    """
    parts = check_parts(parts)
    if isinstance(service, IngestService) and opens_store(parts):
        raise RoleError(f"an ingest worker runs the summarise consumer only, not {parts}")
    kafka = service.settings.kafka
    routers = {
        "summarise": lambda: summarise_embed.router(
            kafka, consumers=summarise_embed.consumers_for(service.settings, service.ingestor)
        ),
        "assign": lambda: assign.router(kafka),
        "name": lambda: name.router(kafka, background=_background_naming(service)),
        "commands": lambda: recompute.router(kafka),
    }
    modules = {"summarise": summarise_embed, "assign": assign, "name": name, "commands": recompute}
    for key, value in service.context().items():
        broker.context.set_global(key, value)
    for part in parts:
        broker.include_router(routers[part]())
        for key, value in modules[part].context().items():
            broker.context.set_global(key, value)


def _background_naming(service: StreamService | IngestService) -> bool:
    return isinstance(service, StreamService) and service.naming.background_namer is not None


async def serve(
    settings: Settings,
    *,
    offline: bool,
    parts: Collection[str] = PARTS,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT: the parts' consumers, the monitors and the HTTP API.

    Only the summarise part (`--role ingest`): the store is never opened and the HTTP API is
    /health and /metrics. Any other part: the store is opened (the embedded one by one
    process only), with the recompute scheduler when the commands consumer is here.

    On a signal the HTTP server stops, then the broker stops its subscribers gracefully (the
    batch in flight finishes and commits), then the store is closed.
    """
    parts = check_parts(parts)
    limit_blas_threads()
    await prepare_topics(settings)
    broker = make_broker(settings.kafka)
    outputs = KafkaOutputs(broker, settings.kafka)
    service: StreamService | IngestService
    if opens_store(parts):
        service = build_stream(settings, outputs, offline=offline, summarises="summarise" in parts)
    else:
        service = build_ingest(settings, outputs, offline=offline)
    tasks: list[asyncio.Task[None]] = []
    try:  # whatever fails from here, the broker, the store and the worker are released
        k = settings.kafka
        service.metrics.dead_letters_total = await topic_record_count(
            k.bootstrap, k.topic_dlq, client_kwargs=aiokafka_kwargs(k)
        )
        include(broker, service, parts)
        settle_heap()  # everything start-up builds exists now
        await broker.start()
        tasks = monitors(service, parts)
        server = _http_server(service, parts)
        stop_on_signals(server)
        if ready is not None:
            ready.set()
        await server.serve()
    finally:
        await _shut_down(broker, service, tasks)


def _http_server(service: StreamService | IngestService, parts: Collection[str]) -> uvicorn.Server:
    """The HTTP API (an ingest worker's: /health and /metrics) under uvicorn."""
    settings = service.settings
    if isinstance(service, StreamService):
        # With the commands consumer here, POST /recompute goes through the commands topic, so
        # a requested recompute survives a crash of the service; otherwise it runs in-process.
        r = service.recomputer
        app = make_http_app(service, launch=r.request if "commands" in parts else r.start_here)
    else:
        app = make_ops_app(service)
    logger.info(
        "serving on http://%s:%d (parts: %s; store: %s)",
        settings.service.host, settings.service.port, ", ".join(parts),
        "open" if isinstance(service, StreamService) else "not opened",
    )  # fmt: skip
    return HttpServer(
        uvicorn.Config(
            app, host=settings.service.host, port=settings.service.port, log_level="warning",
            lifespan="off",
        )
    )  # fmt: skip


async def _shut_down(
    broker: KafkaBroker, service: StreamService | IngestService, tasks: list[asyncio.Task[None]]
) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await broker.stop()
    service.close()
    logger.info("stopped: in-flight batches finished and committed")
