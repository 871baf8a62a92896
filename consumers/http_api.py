"""Entry point: the service's local HTTP API (read model, recompute, export, /metrics, /health).

Commands and the dashboard reach the data through it while `serve` holds the embedded store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kura_stream.service import read_model
from kura_stream.service.export_store import export_store
from kura_stream.service.stream import StreamService


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


def make_http_app(service: StreamService, *, launch: Callable[[str], Awaitable[None]]) -> Starlette:
    """The ASGI app over a running service's use cases.

    Args:
        service: The running service.
        launch: `await launch(request_id)` queues a recompute and returns before it runs.
    """
    counters = service.metrics

    def _json(model: object) -> Response:
        if isinstance(model, BaseModel):
            return Response(model.model_dump_json(), media_type="application/json")
        if isinstance(model, list):
            body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
            return Response(body, media_type="application/json")
        raise TypeError(type(model))

    async def status(_: Request) -> Response:
        return _json(read_model.status(service))

    async def clusters(_: Request) -> Response:
        return _json(read_model.clusters(service))

    async def cluster(request: Request) -> Response:
        try:
            return _json(read_model.cluster_detail(service, request.path_params["cluster_id"]))
        except KeyError:
            return JSONResponse({"error": "unknown cluster"}, status_code=404)

    async def recompute(_: Request) -> Response:
        request_id = read_model.new_request_id()
        await launch(request_id)
        return _json(read_model.recompute_status(service, request_id))

    async def recompute_status(request: Request) -> Response:
        try:
            return _json(read_model.recompute_status(service, request.path_params["request_id"]))
        except KeyError:
            return JSONResponse({"error": "unknown recompute request"}, status_code=404)

    async def export(request: Request) -> Response:
        root = service.settings.service.export_dir or service.settings.data_dir / "exports"
        try:
            dest = export_destination(await request.body(), root)
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
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

    async def metrics(_: Request) -> Response:
        s = read_model.status(service)
        counters.conversations.set(s.conversations)
        counters.clusters.set(s.clusters)
        counters.outliers.set(s.outliers)
        counters.lag_gauge.set(s.lag)
        return Response(generate_latest(counters.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        ok = counters.broker_ok and counters.store_ok and counters.llm_ok
        body = {
            "status": "ok" if ok else "degraded",
            "broker": counters.broker_ok,
            "store": counters.store_ok,
            "llm": counters.llm_ok,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/status", status),
            Route("/clusters", clusters),
            Route("/clusters/{cluster_id}", cluster),
            Route("/recompute", recompute, methods=["POST"]),
            Route("/recompute/{request_id}", recompute_status),
            Route("/export", export, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/health", health),
        ]
    )
