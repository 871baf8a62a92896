"""`kura-stream demo`: the whole system on one machine, over a real sample of conversations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from kura_stream.settings import Settings
from kura_stream.types import Cluster

console = Console()


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _handled(base: str, before: dict[str, int]) -> int:
    """Conversations handled since `before` (a /status answer).

    Stored, recognised as stored already (a second run replays the same sample), or
    dead-lettered.
    """
    now = httpx.get(f"{base}/status", timeout=10).json()
    return sum(now[k] - before[k] for k in ("conversations", "duplicates", "dlq"))


def _clusters(base: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = httpx.get(f"{base}/clusters", timeout=30).json()
    return answer


def _as_clusters(views: list[dict[str, Any]]) -> list[Cluster]:
    fields = set(Cluster.model_fields)
    return [Cluster.model_validate({k: v for k, v in c.items() if k in fields}) for c in views]


def _wait_for_llm_names(base: str, timeout_s: float, *, stall_s: float = 300.0) -> list[Cluster]:
    """Poll until every shown base cluster has an LLM (or a manual) name.

    Gives up after timeout_s, or once no LLM name has landed for stall_s seconds (an LLM that
    fails leaves the offline names).

    Returns:
        The clusters as they are then.
    """
    started = last_progress = time.monotonic()
    done = -1
    while True:
        views = _clusters(base)
        base_views = [c for c in views if c["level"] == 0 and c["visible"]]
        named = sum(c.get("named_by") in ("llm", "manual") for c in base_views)
        now = time.monotonic()
        if named != done:
            elapsed = now - started
            console.print(f"[bold]LLM names[/] {named}/{len(base_views)} after {elapsed:.0f}s")
            done, last_progress = named, now
        if named >= len(base_views) or now - started > timeout_s or now - last_progress > stall_s:
            return _as_clusters(views)
        time.sleep(5.0)


def _start_backends(settings: Settings, *, with_llm: bool) -> None:
    """The local broker, and the local LLM server where the demo uses an LLM."""
    from kura_stream.adapters.kafka_server import BrokerConfig, LocalKafkaServer

    status = LocalKafkaServer(BrokerConfig.from_settings(settings)).start()
    console.print(f"[bold]Kafka[/] {status.version} on {status.bootstrap}")
    if with_llm:
        from kura_stream.adapters.llm_server import LLMServerConfig, LocalLLMServer

        llm_status = LocalLLMServer(LLMServerConfig.from_settings(settings)).start()
        console.print(f"[bold]LLM[/] {llm_status.base_url}")


def _log_path(settings: Settings) -> Path:
    return settings.data_dir / "serve.log"


def _start_service(settings: Settings, serve_args: list[str]) -> subprocess.Popen[bytes]:
    """`kura-stream serve` in a child process, its output appended to serve.log."""
    log = _log_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "kura_stream", "serve", *serve_args]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


def _stream(base: str, sample: Path, n: int, rate: float) -> None:
    """Produce the sample to Kafka and wait until the service has handled every record."""
    before = httpx.get(f"{base}/status", timeout=10).json()
    started = time.monotonic()
    produced = subprocess.run(
        [sys.executable, "-m", "kura_stream", "produce", str(sample), "--rate", str(rate)],
        check=True,
        capture_output=True,
        text=True,
    )
    console.print(produced.stdout.strip())
    _wait(lambda: _handled(base, before) >= n, 3600, f"{n} conversations to be handled")
    seconds = time.monotonic() - started
    after = httpx.get(f"{base}/status", timeout=10).json()
    new, seen, dead = (after[k] - before[k] for k in ("conversations", "duplicates", "dlq"))
    console.print(
        f"[bold]Streamed[/] {n} conversations in {seconds:.1f}s ({n / seconds:.0f}/s): "
        f"{new} new, {seen} stored already, {dead} dead-lettered"
    )


def _recompute(base: str) -> None:
    """Ask the service for a recompute and wait until it completed or failed."""
    request = httpx.post(f"{base}/recompute", timeout=10).json()
    url = f"{base}/recompute/{request['request_id']}"
    _wait(
        lambda: httpx.get(url, timeout=10).json()["state"] in ("completed", "failed"),
        3600,
        "the recompute",
    )
    outcome = httpx.get(url, timeout=10).json()
    console.print(f"[bold]Recompute[/] {outcome['state']}: {outcome['detail']}")


def demo(
    n: int = typer.Option(2000, "--n", help="Real ShareGPT conversations to replay."),
    rate: float = typer.Option(0.0, "--rate", help="Messages per second (0: as fast as possible)."),
    llm: bool = typer.Option(
        False, "--llm", help="Summarise and name with the local LLM (slow on 2 cores)."
    ),
    names: str = typer.Option(
        "offline",
        "--names",
        help="offline, or llm: offline summaries and names at once, LLM names in the "
        "background (the demo waits for them up to --names-wait seconds).",
    ),
    names_wait: float = typer.Option(
        900.0, "--names-wait", help="With --names llm: longest wait for the LLM names."
    ),
    keep: bool = typer.Option(False, "--keep", help="Leave the service running afterwards."),
) -> None:
    """Start the broker, serve, replay a real sample, recompute, and show the result."""
    from kura_stream.datasets import fetch_sharegpt
    from kura_stream.tree import rich_tree

    if names not in ("offline", "llm"):
        raise typer.BadParameter("choose offline or llm", param_hint="--names")
    names_llm = names == "llm" and not llm  # with --llm the LLM names everything anyway
    # SIGTERM (a timeout, a supervisor) unwinds like Ctrl-C: the service is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = Settings()
    _start_backends(settings, with_llm=llm or names_llm)
    sample = fetch_sharegpt(n)
    console.print(f"[bold]Sample[/] {n} ShareGPT conversations -> {sample}")
    base = f"http://{settings.service.host}:{settings.service.port}"
    args = [*([] if llm else ["--offline"]), *(["--names", "llm"] if names_llm else [])]
    service = _start_service(settings, args)
    try:
        _wait(lambda: httpx.get(f"{base}/health", timeout=2).status_code < 600, 180, "the service")
        console.print(f"[bold]Service[/] {base} (PID {service.pid}, log {_log_path(settings)})")
        _stream(base, sample, n, rate)
        _recompute(base)
        clusters = _as_clusters(_clusters(base))
        console.print(rich_tree(clusters, settings.clustering.min_cluster_size_shown))
        if names_llm:
            clusters = _wait_for_llm_names(base, names_wait)
            console.print(rich_tree(clusters, settings.clustering.min_cluster_size_shown))
        status_now = httpx.get(f"{base}/status", timeout=10).json()
        console.print(status_now)
    finally:
        if keep:
            console.print(
                f"service left running (PID {service.pid}); `kill {service.pid}` stops it"
            )
        else:
            service.terminate()
            service.wait(timeout=120)
            console.print("service stopped (broker left running: `kura-stream broker stop`)")
