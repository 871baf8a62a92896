"""`kura-stream serve | produce | status | clusters | recompute | export`: the streaming service."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from kura_stream.settings import Settings

app = typer.Typer(no_args_is_help=True)

STORE_HELD = (
    "Another `serve` holds the embedded store. Run more workers beside it with --role ingest "
    "(they never open the store); assign, name and the commands run in one process only "
    "(--role assign or all)."
)
"""What `serve` adds when the embedded store is open in another process."""


def _base_url(settings: Settings) -> str:
    return f"http://{settings.service.host}:{settings.service.port}"


def _api(method: str, path: str, **kwargs: Any) -> Any:
    """Call the running service's HTTP API; exit 3 with a clear message if it is not there."""
    url = _base_url(Settings()) + path
    try:
        response = httpx.request(
            method, url, timeout=600.0 if path == "/export" else 30.0, **kwargs
        )
    except httpx.HTTPError as err:
        typer.echo(
            f"error: no kura-stream service answers at {url} ({err}); start `kura-stream serve`",
            err=True,
        )
        raise typer.Exit(3) from err
    if response.status_code >= 400:
        typer.echo(f"error: {response.status_code} {response.text}", err=True)
        raise typer.Exit(1)
    return response.json()


@app.command()
def serve(
    offline: bool = typer.Option(False, "--offline", help="No LLM: offline summaries and names."),
    role: str | None = typer.Option(
        None,
        "--role",
        help="What this process runs. all (default): everything. ingest: summarise + embed "
        "only; it never opens the store, so run as many as the conversations topic has "
        "partitions, beside one assign process, even on the embedded store; it serves /health "
        "and /metrics only. assign: the assign, name and commands consumers, the recompute "
        "scheduler and the whole HTTP API; run exactly one. Recompute has no role of its own: "
        "it rewrites and reloads the clusters the assigner keeps in memory, so it runs in the "
        "assign process.",
    ),
    parts: str | None = typer.Option(
        None,
        help="Instead of --role: the consumers to run (comma-separated, from summarise, "
        "assign, name, commands).",
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        min=0,
        max=65535,
        help="HTTP port (default KURA_SERVICE_PORT, 8799). 0: a free port chosen by the OS and "
        "logged, for several ingest workers on one host. The CLI commands and the dashboard "
        "talk to KURA_SERVICE_PORT: give it to the assign process.",
    ),
    names: str | None = typer.Option(
        None,
        "--names",
        help="With --offline: offline, or llm (offline names at once, LLM names in the "
        "background). Default: KURA_SERVICE_NAMES, else offline.",
    ),
) -> None:
    """Run the consumers, the recompute scheduler and the HTTP API until SIGTERM/SIGINT."""
    from consumers.roles import RoleError, parts_for
    from consumers.serve import serve as run

    try:
        chosen = parts_for(role, parts)
    except RoleError as err:
        raise typer.BadParameter(str(err), param_hint="--role/--parts") from err
    settings = Settings()
    update: dict[str, Any] = {}
    if names is not None:
        if names not in ("offline", "llm"):
            raise typer.BadParameter("choose offline or llm", param_hint="--names")
        update["names"] = names
    if port is not None:
        update["port"] = port
    if update:
        service = settings.service.model_copy(update=update)
        settings = settings.model_copy(update={"service": service})
    from kura_stream.adapters.stores import StoreLockedError

    try:
        asyncio.run(run(settings, offline=offline, parts=chosen))
    except StoreLockedError as err:
        typer.echo(f"error: {err}\n{STORE_HELD}", err=True)
        raise typer.Exit(3) from err


@app.command()
def produce(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Conversations file."),
    rate: float = typer.Option(0.0, "--rate", help="Messages per second (0: as fast as possible)."),
    limit: int = typer.Option(0, "--limit", help="Stop after this many (0: all)."),
    fmt: str = typer.Option("auto", "--format", help="auto, jsonl, kura, claude or sharegpt."),
) -> None:
    """Replay a conversation file into the conversations topic (key = chat_id)."""
    from kura_stream.adapters.kafka_replay import replay

    sent, refused = asyncio.run(replay(Settings(), file, rate=rate, limit=limit, fmt=fmt))
    typer.echo(f"produced {sent} conversations; {refused} records refused by the loader")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts and health of the running service."""
    data = _api("GET", "/status")
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        typer.echo(f"{key:>20}: {value}")


@app.command()
def clusters(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every cluster (id, name, description, count, parent_id, level, x, y, named_by)."""
    keys = ("id", "name", "description", "count", "parent_id", "level", "x", "y", "named_by")
    data = [{k: c.get(k) for k in keys} for c in _api("GET", "/clusters")]
    if as_json:
        typer.echo(json.dumps(data))
        return
    for c in data:
        indent = "  " * max(0, 2 - int(c["level"]))
        typer.echo(f"{indent}{c['count']:>7}  {c['name'] or '(name hidden)'}  [{c['id']}]")


@app.command()
def recompute(
    timeout: float = typer.Option(1800.0, help="Seconds to wait for completion."),
) -> None:
    """Request a full recompute and wait for its completion."""
    started = _api("POST", "/recompute")
    request_id = started["request_id"]
    typer.echo(f"recompute {request_id} {started['state']}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _recompute_state(request_id)
        if state is None:  # the service is restarting: the command waits in its topic
            time.sleep(2.0)
            continue
        if state["state"] in ("completed", "failed"):
            typer.echo(f"recompute {request_id} {state['state']}: {state['detail']}")
            raise typer.Exit(0 if state["state"] == "completed" else 1)
        time.sleep(1.0)
    typer.echo(f"recompute {request_id} still running after {timeout:.0f}s", err=True)
    raise typer.Exit(2)


def _recompute_state(request_id: str) -> dict[str, Any] | None:
    """The request's state, or None while the service is away or has not picked it up."""
    url = _base_url(Settings()) + f"/recompute/{request_id}"
    try:
        response = httpx.get(url, timeout=30.0)
    except httpx.HTTPError:
        return None
    if response.status_code == 404:
        return None
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


@app.command()
def export(
    dest: str = typer.Argument(
        ...,
        help="Folder to write, inside the service's export folder (KURA_SERVICE_EXPORT_DIR, "
        "default <data_dir>/exports): a name, or an absolute path inside it.",
    ),
) -> None:
    """Write clusters.json, assignments.jsonl, summaries.jsonl and Kura's files."""
    answer = _api("POST", "/export", json={"dir": dest})
    for path in answer["written"]:
        typer.echo(path)
    _echo_export_report(Path(answer["dir"]))


def _echo_export_report(dest: Path) -> None:
    """What the Kura UI files in dest left out, and how to open them (the service is local)."""
    from kura_stream.export import read_report

    try:
        report = read_report(dest)
    except (OSError, ValueError):
        return
    typer.echo(f"{report['conversations']} conversations in kura/conversations.json", err=True)
    for key, what in (
        ("left_out_without_summary", "conversations without a summary left out"),
        ("without_messages", "conversations stored without their messages (older store)"),
        ("messages_truncated", "conversations whose stored messages were cut"),
    ):
        if report.get(key):
            typer.echo(f"note: {report[key]} {what}", err=True)
    typer.echo(report["how_to_open"], err=True)
