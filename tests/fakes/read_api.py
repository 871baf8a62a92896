"""An in-memory ReadAPI that tests can grow, change and take offline, and an HTTP server for it."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from kura_stream.service.api_models import (
    ClusterDetail,
    ClusterView,
    RecomputeStatus,
    ServiceStatus,
)
from kura_stream.types import Summary
from tui.http_api import ServiceUnavailable

logger = logging.getLogger(__name__)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
"""The fixed 'now' of seeded fakes and the tests that use them."""
WINDOW = 12
"""Samples kept in each cluster's history."""


@dataclass
class _Node:
    id: str
    name: str
    description: str
    count: int
    parent_id: str | None
    level: int
    x: float
    y: float
    created_at: datetime
    history: list[int] = field(default_factory=list)
    samples: list[Summary] = field(default_factory=list)


_Seed = tuple[str, str, str, int, float, float, int, tuple[str, ...]]
# Under each meta cluster: (id, name, description, count, x, y, growth per sample, summaries).
# fmt: off
_SEED: dict[tuple[str, str, str], list[_Seed]] = {
    ("m-code", "Help with programming", "Users ask for help writing and fixing code."): [
        ("c-py", "Debug Python import errors",
         "Users hit ModuleNotFoundError and circular imports in Python projects.", 1840,
         -6.0, 4.0, 9, (
             "The user's Flask app fails with a circular import between two modules.",
             "The user cannot import a package installed with pip inside a virtualenv.",
             "The user asks why a relative import fails when a script is run directly.")),
        ("c-sql", "Write and optimise SQL queries",
         "Users ask for joins, window functions and faster queries.", 960, -4.5, 5.5, 4, (
             "The user wants a running total per customer with a window function.",
             "The user asks why a query with three joins is slow on PostgreSQL.")),
        ("c-rx", "Explain regular expressions",
         "Users ask what a regex matches and how to write one.", 412, -7.0, 2.5, 1, (
             "The user asks what a regex with lookaheads matches in log lines.",)),
    ],
    ("m-write", "Write and edit texts", "Users ask for drafts, rewrites and proofreading."): [
        ("c-cv", "Draft cover letters for job applications",
         "Users ask for cover letters tailored to a job ad.", 1220, 5.0, 3.0, 6, (
             "The user asks for a cover letter for a junior data analyst position.",
             "The user wants their cover letter shortened to one page.")),
        ("c-mail", "Rewrite emails to sound more polite",
         "Users paste an email and ask for a softer tone.", 730, 6.5, 1.5, 2, (
             "The user asks to soften an email declining a meeting.",)),
    ],
    ("m-learn", "Learn and study topics", "Users ask for explanations of school topics."): [
        ("c-math", "Solve calculus homework problems",
         "Users ask for step-by-step derivatives and integrals.", 655, 0.5, -5.0, 3, (
             "The user asks for the derivative of a product of two functions, step by step.",
             "The user wants to check their answer to an integral by substitution.")),
        ("c-hist", "Summarise historical events",
         "Users ask for short accounts of wars and revolutions.", 238, 2.0, -6.5, 0, (
             "The user asks for a short summary of the causes of the French Revolution.",)),
        ("c-tiny", "Rare niche topic", "Too small to show.", 3, 3.5, -4.0, 0, (
             "A summary that must never be shown.",)),
    ],
}
# fmt: on


def _summaries(cluster_id: str, name: str, n: int = 3) -> list[Summary]:
    text = f"The user asks the assistant to {name.lower()}"
    return [Summary(chat_id=f"{cluster_id}-chat-{i}", summary=f"{text} ({i}).") for i in range(n)]


class FakeReadAPI:
    """A ReadAPI over in-memory clusters, mutable by tests to simulate a live stream.

    Meta counts are kept as the sum of their children; clusters smaller than `min_size_shown`
    are answered with visible=False and blank name and description (as the service does), and
    no sample summaries.

    Args:
        clock: The current time (fixed in tests).
        min_size_shown: The privacy floor.
    """

    def __init__(self, *, clock: Callable[[], datetime] = lambda: NOW, min_size_shown: int = 5):
        self.clock = clock
        self.min_size_shown = min_size_shown
        self.nodes: dict[str, _Node] = {}
        self.outliers = 0
        self.dlq = 0
        self.lag = 0
        self.throughput_per_s = 0.0
        self.broker_ok = True
        self.store_ok = True
        self.started_at = clock() - timedelta(hours=3)
        self.last_recompute_at: datetime | None = None
        self.offline_reason: str | None = None
        self.delay_s = 0.0
        """Seconds each answer waits (to test timeouts through the HTTP server)."""
        self.recompute_steps = 2
        """Status calls a recompute spends queued/running before it completes."""
        self.fail_next_recompute = False
        self.calls: list[str] = []
        self._recomputes: dict[str, tuple[RecomputeStatus, int]] = {}
        self._ids = itertools.count(1)

    # --- building and changing the state -----------------------------------------------------
    @classmethod
    def seeded(cls, *, clock: Callable[[], datetime] = lambda: NOW) -> FakeReadAPI:
        """Three topics with base clusters, histories, samples and one hidden small cluster."""
        fake = cls(clock=clock)
        now = clock()
        for meta_id, meta_name, meta_desc in _SEED:
            fake.add_cluster(meta_id, meta_name, description=meta_desc, level=1, count=0)
        for (meta_id, _, _), kids in _SEED.items():
            for i, (cid, name, desc, count, x, y, step, texts) in enumerate(kids):
                node = fake.add_cluster(
                    cid,
                    name,
                    description=desc,
                    parent_id=meta_id,
                    count=count,
                    x=x,
                    y=y,
                    created_at=now - timedelta(days=2, hours=i),
                    samples=[
                        Summary(chat_id=f"{cid}-chat-{k}", summary=t, summariser="offline:test")
                        for k, t in enumerate(texts, 1)
                    ],
                )
                rng = random.Random(cid)
                gains = [rng.randint(0, 2 * step) for _ in range(WINDOW - 1)]
                node.history = [count - sum(gains[k:]) for k in range(WINDOW)]
        for meta_id, _, _ in _SEED:
            histories = [n.history for n in fake.nodes.values() if n.parent_id == meta_id]
            fake.nodes[meta_id].history = [sum(h[k] for h in histories) for k in range(WINDOW)]
        fake.outliers, fake.dlq, fake.lag, fake.throughput_per_s = 310, 3, 12, 4.2
        fake.last_recompute_at = now - timedelta(minutes=7)
        return fake

    def add_cluster(
        self,
        cluster_id: str,
        name: str,
        *,
        count: int,
        description: str = "",
        parent_id: str | None = None,
        level: int = 0,
        x: float = 0.0,
        y: float = 0.0,
        created_at: datetime | None = None,
        samples: list[Summary] | None = None,
    ) -> _Node:
        """Add a cluster (a new base cluster by default, born now) and update its ancestors."""
        node = _Node(
            id=cluster_id,
            name=name,
            description=description,
            count=count,
            parent_id=parent_id,
            level=level,
            x=x,
            y=y,
            created_at=created_at or self.clock(),
            history=[count],
            samples=samples if samples is not None else _summaries(cluster_id, name),
        )
        self.nodes[cluster_id] = node
        self._recount()
        return node

    def grow(self, cluster_id: str, n: int) -> None:
        """Add `n` conversations to a base cluster, then take a history sample of every cluster."""
        self.nodes[cluster_id].count += n
        self._recount()
        self.tick()

    def move(self, cluster_id: str, x: float, y: float) -> None:
        """Move a cluster on the map."""
        self.nodes[cluster_id].x, self.nodes[cluster_id].y = x, y

    def tick(self) -> None:
        """Take a history sample of every cluster (keeping the last WINDOW)."""
        for node in self.nodes.values():
            node.history = [*node.history, node.count][-WINDOW:]

    def go_offline(self, reason: str = "service stopped") -> None:
        """Answer every call with ServiceUnavailable until go_online()."""
        self.offline_reason = reason

    def go_online(self) -> None:
        """Answer again."""
        self.offline_reason = None

    def _recount(self) -> None:
        for node in sorted(self.nodes.values(), key=lambda n: n.level):
            if node.level > 0:
                node.count = sum(k.count for k in self.nodes.values() if k.parent_id == node.id)

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.offline_reason is not None:
            raise ServiceUnavailable(self.offline_reason)

    def _view(self, node: _Node) -> ClusterView:
        visible = node.count >= self.min_size_shown
        shared = ("id", "count", "parent_id", "level", "x", "y", "created_at")
        return ClusterView(
            **{key: getattr(node, key) for key in shared},
            name=node.name if visible else "",
            description=node.description if visible else "",
            slug="_".join(node.name.lower().split()[:3]) if visible else "",
            history=tuple(node.history),
            visible=visible,
        )

    # --- the ReadAPI ---------------------------------------------------------------------------
    async def status(self) -> ServiceStatus:
        """Counts and health."""
        self._check("status")
        base = [n for n in self.nodes.values() if n.level == 0]
        running = any(rc.state in ("queued", "running") for rc, _ in self._recomputes.values())
        return ServiceStatus(
            conversations=sum(n.count for n in base) + self.outliers,
            clusters=len(base),
            outliers=self.outliers,
            dlq=self.dlq,
            lag=self.lag,
            throughput_per_s=self.throughput_per_s,
            last_recompute_at=self.last_recompute_at,
            recompute_running=running,
            broker_ok=self.broker_ok,
            store_ok=self.store_ok,
            started_at=self.started_at,
        )

    async def clusters(self) -> list[ClusterView]:
        """Every cluster, base and meta."""
        self._check("clusters")
        return [self._view(n) for n in self.nodes.values()]

    async def cluster(self, cluster_id: str) -> ClusterDetail:
        """One cluster with children and sample summaries (KeyError if unknown)."""
        self._check(f"cluster {cluster_id}")
        node = self.nodes[cluster_id]
        view = self._view(node)
        children = tuple(n.id for n in self.nodes.values() if n.parent_id == cluster_id)
        sample = tuple(node.samples[:20]) if view.visible else ()
        return ClusterDetail(cluster=view, children=children, sample=sample)

    async def request_recompute(self) -> RecomputeStatus:
        """Queue a recompute; it advances one state per recompute_status call."""
        self._check("request_recompute")
        rc = RecomputeStatus(request_id=f"rc-{next(self._ids)}", state="queued")
        self._recomputes[rc.request_id] = (rc, 0)
        return rc

    async def recompute_status(self, request_id: str) -> RecomputeStatus:
        """Where a recompute is; every call moves it one step on (KeyError if unknown)."""
        self._check(f"recompute_status {request_id}")
        rc, steps = self._recomputes[request_id]
        if rc.state in ("completed", "failed"):
            return rc
        now, before = self.clock(), sum(1 for n in self.nodes.values() if n.level == 0)
        if steps + 1 < self.recompute_steps:
            rc = rc.model_copy(update={"state": "running", "started_at": rc.started_at or now})
        elif self.fail_next_recompute:
            self.fail_next_recompute = False
            rc = rc.model_copy(
                update={"state": "failed", "detail": "store unavailable", "finished_at": now}
            )
        else:
            self.last_recompute_at = now
            rc = rc.model_copy(
                update={
                    "state": "completed",
                    "started_at": rc.started_at or now,
                    "finished_at": now,
                    "clusters_before": before,
                    "clusters_after": before,
                }
            )
        self._recomputes[request_id] = (rc, steps + 1)
        return rc


# --- a tiny real HTTP server answering FakeReadAPI's answers on the service's routes ---------
class ReadAPIServer:
    """FakeReadAPI on the service's HTTP routes, in a thread, on 127.0.0.1.

    Stopping and starting again keeps the port, so a client can reconnect to the same URL.

    Args:
        api: The fake to serve.
        port: 0 for a free port.
    """

    def __init__(self, api: FakeReadAPI, port: int = 0) -> None:
        self.api = api
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReadAPIServer:
        """Listen and serve in a daemon thread."""
        server = _Server(("127.0.0.1", self.port), _handler(self.api))
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops concurrent connects (retried after 1 s)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left: the late answer has nowhere to go.
        logger.debug("read API server: client %s went away", client_address)


@contextmanager
def serve(api: FakeReadAPI) -> Iterator[ReadAPIServer]:
    """A started ReadAPIServer for `api`, stopped on exit."""
    server = ReadAPIServer(api).start()
    try:
        yield server
    finally:
        server.stop()


def _handler(api: FakeReadAPI) -> type[BaseHTTPRequestHandler]:
    def route(method: str, parts: list[str]) -> Coroutine[Any, Any, Any] | None:
        match method, parts:
            case "GET", ["status"]:
                return api.status()
            case "GET", ["clusters"]:
                return api.clusters()
            case "GET", ["clusters", cid]:
                return api.cluster(unquote(cid))
            case "POST", ["recompute"]:
                return api.request_recompute()
            case "GET", ["recompute", rid]:
                return api.recompute_status(unquote(rid))
        return None

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            if api.delay_s:
                time.sleep(api.delay_s)
            coro = route(method, [p for p in self.path.split("?")[0].split("/") if p])
            if coro is None:
                return self._send(404, {"detail": "no such route"})
            try:
                result = asyncio.run(coro)
            except ServiceUnavailable as err:
                return self._send(503, {"detail": str(err)})
            except KeyError as err:
                return self._send(404, {"detail": f"unknown: {err}"})
            if isinstance(result, list):
                return self._send(200, [r.model_dump(mode="json") for r in result])
            assert isinstance(result, BaseModel)
            return self._send(200, result.model_dump(mode="json"))

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("read API server: " + format, *args)

    return Handler
