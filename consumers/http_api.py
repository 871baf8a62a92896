"""Entry point: the service's local HTTP API (read model, recompute, export, /metrics, /health).

Commands, the dashboard and the web map (`/`, files in kura_stream/web/) reach the data through
it while `serve` holds the embedded store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import kura_stream
from kura_stream.service import read_model
from kura_stream.service.api_models import ServiceStatus
from kura_stream.service.export_store import export_store
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.stream import IngestService, StreamService


def export_destination(body: bytes, root: Path) -> Path:
    """The folder a `POST /export` body names, inside the configured export folder.

    The body is `{"dir": "<name>"}`: a folder name or relative path under root, or an
    absolute path inside it.

    Raises:
        ValueError: the body is not that JSON object, or the folder is outside root.
    """
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError) as err:
        raise ValueError(f'the body must be a JSON object like {{"dir": "name"}}: {err}') from err
    if not isinstance(data, dict) or not isinstance(data.get("dir"), str) or not data["dir"]:
        raise ValueError('the body must be a JSON object with a non-empty string "dir"')
    if set(data) - {"dir"}:
        raise ValueError(f'unknown fields {sorted(set(data) - {"dir"})}; only "dir" is read')
    base = root.resolve()
    dest: Path = (base / str(data["dir"])).resolve()
    if dest != base and base not in dest.parents:
        raise ValueError(
            f"dir must be inside the export folder {base} (KURA_SERVICE_EXPORT_DIR sets it)"
        )
    return dest


WEB_DIR = Path(kura_stream.__file__).parent / "web"
"""The web map's page, script and style (served at / and /web/)."""
D3_PATH = Path("web/node_modules/d3/dist/d3.min.js")
"""Where scripts/web_deps.sh installs the map's library, under the cache folder."""
SAMPLE_MAX = 20
"""Most sample summaries `GET /clusters/{id}?sample=N` returns (ClusterDetail's bound)."""


class BadQuery(ValueError):
    """A request's query string is not one the route reads: answered with a 400."""


def query_ints(request: Request, bounds: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """The query parameters a route reads, as integers within their bounds.

    Args:
        request: The request.
        bounds: Parameter name -> (lowest, highest) allowed; no other name is accepted.

    Raises:
        BadQuery: An unknown or repeated parameter, or a value that is not such an integer.
    """
    params = request.query_params
    unknown = sorted(set(params.keys()) - bounds.keys())
    if unknown:
        known = ", ".join(sorted(bounds)) or "none"
        raise BadQuery(f"unknown query parameter(s) {unknown}; this route reads: {known}")
    out: dict[str, int] = {}
    for name, (low, high) in bounds.items():
        values = params.getlist(name)
        if not values:
            continue
        if len(values) > 1:
            raise BadQuery(f"{name} is given {len(values)} times; give it once")
        value = values[0]
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise BadQuery(f"{name} must be an integer from {low} to {high}, not {value[:40]!r}")
        out[name] = int(value)
    return out


def _json(model: object) -> Response:
    if isinstance(model, BaseModel):
        return Response(model.model_dump_json(), media_type="application/json")
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
        return Response(body, media_type="application/json")
    raise TypeError(type(model))


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def _cross_site(request: Request) -> bool:
    """A browser's request from another site (its Origin is not this server).

    The CLI and the dashboard send no Origin; the web map sends its own. Without this check a
    page on any site could make a visitor's browser start recompute or export (a plain form
    POST needs no CORS permission).
    """
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _read_routes(service: StreamService) -> list[Route]:
    """GET /status, /clusters, /clusters/{id}: what the dashboard and the web map read."""

    async def status(request: Request) -> Response:
        query_ints(request, {})
        return _json(read_model.status(service))

    async def clusters(request: Request) -> Response:
        query_ints(request, {})
        return _json(read_model.clusters(service))

    async def cluster(request: Request) -> Response:
        sample = query_ints(request, {"sample": (1, SAMPLE_MAX)}).get("sample", 5)
        cluster_id = request.path_params["cluster_id"]
        try:
            return _json(read_model.cluster_detail(service, cluster_id, sample=sample))
        except KeyError:
            return _error(404, f"unknown cluster {cluster_id[:80]!r}")

    return [
        Route("/status", status),
        Route("/clusters", clusters),
        Route("/clusters/{cluster_id}", cluster),
    ]


def _command_routes(
    service: StreamService, launch: Callable[[str], Awaitable[None]]
) -> list[Route]:
    """POST /recompute, GET /recompute/{id}, POST /export: the commands."""

    async def recompute(request: Request) -> Response:
        if _cross_site(request):
            return _error(403, "recompute is refused from another site's page")
        request_id = read_model.new_request_id()
        await launch(request_id)
        return _json(read_model.recompute_status(service, request_id))

    async def recompute_status(request: Request) -> Response:
        query_ints(request, {})
        request_id = request.path_params["request_id"]
        try:
            return _json(read_model.recompute_status(service, request_id))
        except KeyError:
            return _error(404, f"unknown recompute request {request_id[:80]!r}")

    async def export(request: Request) -> Response:
        if _cross_site(request):
            return _error(403, "export is refused from another site's page")
        root = service.settings.service.export_dir or service.settings.data_dir / "exports"
        try:
            dest = export_destination(await request.body(), root)
        except ValueError as err:
            return _error(400, str(err))
        async with service.write_lock:
            paths = await asyncio.to_thread(
                export_store,
                service.store,
                dest,
                min_size_shown=service.settings.clustering.min_cluster_size_shown,
            )
        return JSONResponse(
            {"dir": str(dest), "written": [str(getattr(paths, f.name)) for f in fields(paths)]}
        )

    return [
        Route("/recompute", recompute, methods=["POST"]),
        Route("/recompute/{request_id}", recompute_status),
        Route("/export", export, methods=["POST"]),
    ]


def _ops_routes(
    counters: ServiceMetrics, status: Callable[[], ServiceStatus] | None
) -> list[Route]:
    """GET /metrics (Prometheus) and /health; without status (an ingest worker), no store."""

    async def metrics(_: Request) -> Response:
        if status is not None:
            s = status()
            counters.conversations.set(s.conversations)
            counters.clusters.set(s.clusters)
            counters.outliers.set(s.outliers)
        counters.lag_gauge.set(counters.lag)
        return Response(generate_latest(counters.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        store = counters.store_ok if status is not None else None  # None: no store here
        ok = counters.broker_ok and store is not False and counters.llm_ok
        body = {
            "status": "ok" if ok else "degraded",
            "broker": counters.broker_ok,
            "store": store,
            "llm": counters.llm_ok,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return [Route("/metrics", metrics), Route("/health", health)]


def _page_routes(service: StreamService) -> list[BaseRoute]:
    """GET / (the web map), /web/vendor/d3.min.js (from the cache) and /web/* (the page's files)."""
    d3 = service.settings.cache_dir / D3_PATH

    async def page(_: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def d3_library(_: Request) -> Response:
        if not d3.is_file():
            message = f"the web map's library is not installed ({d3}): run scripts/web_deps.sh"
            return PlainTextResponse(message, status_code=404)
        return FileResponse(d3, media_type="text/javascript")

    return [
        Route("/", page),
        Route("/web/vendor/d3.min.js", d3_library),
        Mount("/web", app=StaticFiles(directory=WEB_DIR), name="web"),
    ]


async def _bad_query(_: Request, exc: Exception) -> Response:
    return _error(400, str(exc))


def make_http_app(service: StreamService, *, launch: Callable[[str], Awaitable[None]]) -> Starlette:
    """The ASGI app over a running service's use cases, and the web map that reads it.

    Args:
        service: The running service.
        launch: `await launch(request_id)` queues a recompute and returns before it runs.
    """
    routes: list[BaseRoute] = [
        *_read_routes(service),
        *_command_routes(service, launch),
        *_ops_routes(service.metrics, lambda: read_model.status(service)),
        *_page_routes(service),
    ]
    return Starlette(routes=routes, exception_handlers={BadQuery: _bad_query})


def make_ops_app(service: IngestService) -> Starlette:
    """An ingest worker's HTTP app: /health and /metrics only (it holds no store to read).

    /health answers "store": null; /metrics has the worker's own counters (kura_ingested,
    batch times, the summarise group's lag).
    """
    return Starlette(routes=_ops_routes(service.metrics, None))
