"""The running service's local HTTP API: the read model, recompute requests, /metrics, /health.

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
from kura_stream.service.runtime import Runtime


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


def make_http_app(
    rt: Runtime, *, start_recompute: Callable[[Runtime, str], Awaitable[None]]
) -> Starlette:
    """The ASGI app over a runtime.

    Args:
        rt: The running service's runtime.
        start_recompute: `await start_recompute(rt, request_id)` queues a recompute and
            returns before it runs.
    """
    launch = start_recompute

    def _json(model: object) -> Response:
        if isinstance(model, BaseModel):
            return Response(model.model_dump_json(), media_type="application/json")
        if isinstance(model, list):
            body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
            return Response(body, media_type="application/json")
        raise TypeError(type(model))

    async def status(_: Request) -> Response:
        return _json(read_model.status(rt))

    async def clusters(_: Request) -> Response:
        return _json(read_model.clusters(rt))

    async def cluster(request: Request) -> Response:
        try:
            return _json(read_model.cluster_detail(rt, request.path_params["cluster_id"]))
        except KeyError:
            return JSONResponse({"error": "unknown cluster"}, status_code=404)

    async def recompute(_: Request) -> Response:
        request_id = read_model.new_request_id()
        await launch(rt, request_id)
        return _json(read_model.recompute_status(rt, request_id))

    async def recompute_status(request: Request) -> Response:
        try:
            return _json(read_model.recompute_status(rt, request.path_params["request_id"]))
        except KeyError:
            return JSONResponse({"error": "unknown recompute request"}, status_code=404)

    async def export(request: Request) -> Response:
        root = rt.settings.service.export_dir or rt.settings.data_dir / "exports"
        try:
            dest = export_destination(await request.body(), root)
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        async with rt.write_lock:
            paths = await asyncio.to_thread(
                export_store,
                rt.store,
                dest,
                min_size_shown=rt.settings.clustering.min_cluster_size_shown,
            )
        return JSONResponse(
            {"dir": str(dest), "written": [str(getattr(paths, f.name)) for f in fields(paths)]}
        )

    async def metrics(_: Request) -> Response:
        s = read_model.status(rt)
        rt.metrics.conversations.set(s.conversations)
        rt.metrics.clusters.set(s.clusters)
        rt.metrics.outliers.set(s.outliers)
        rt.metrics.lag.set(s.lag)
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        ok = rt.broker_ok and rt.store_ok and rt.llm_ok
        body = {
            "status": "ok" if ok else "degraded",
            "broker": rt.broker_ok,
            "store": rt.store_ok,
            "llm": rt.llm_ok,
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
