"""What `serve` runs beside its consumers: the HTTP server, its signal handling, the monitors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Collection, Generator

import uvicorn

from kura_stream.adapters.kafka_client import RETRY_BACKOFF_MS, aiokafka_kwargs, consumer_lag
from kura_stream.service.stream import IngestService, StreamService

logger = logging.getLogger(__name__)

LAG_EVERY_S = 5.0
"""How often the lag monitor asks the broker, while it answers."""
LAG_TIMEOUT_S = 3.0
"""A lag check that takes longer than this counts as the broker not answering."""
LAG_BACKOFF_MAX_S = 30.0
"""While the broker does not answer, the lag monitor's pause doubles up to this."""


class HttpServer(uvicorn.Server):
    """uvicorn, minus its signal handling: `serve` owns SIGTERM and SIGINT.

    uvicorn re-raises the signal it captured once it has stopped, which killed the process
    before the broker's in-flight batches were finished and committed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave the process's signal handlers alone."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then log the address it listens on (the OS chose the port for --port 0)."""
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                logger.info("HTTP listening on http://%s:%d", host, port)


def stop_on_signals(server: uvicorn.Server) -> None:
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


def monitors(
    service: StreamService | IngestService, parts: Collection[str]
) -> list[asyncio.Task[None]]:
    """The monitors of one process's role.

    Always the lag monitor (backing off while the broker is away); with the store, the count
    history; with the commands consumer, the recompute scheduler.
    """
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

    tasks = [asyncio.create_task(_every(LAG_EVERY_S, lag, max_seconds=LAG_BACKOFF_MAX_S))]
    if isinstance(service, StreamService):
        store = service.store

        async def history() -> None:
            metrics.note_counts({c.cluster_id: c.meta.count for c in store.list_clusters()})

        tasks.append(asyncio.create_task(_every(10.0, history)))
        if "commands" in parts:
            schedule = service.recomputer.schedule(service.settings.clustering)
            tasks.append(asyncio.create_task(schedule))
    return tasks
