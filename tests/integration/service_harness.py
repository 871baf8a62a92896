"""Run `kura-stream serve` as a real subprocess against the test broker, for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures_kafka import free_ports


@dataclass
class ServiceUnderTest:
    """One service instance with its own topics, group, store folder and HTTP port."""

    bootstrap: str
    workdir: Path
    offline: bool = True
    embedder: str = "static"
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    port: int = field(default_factory=lambda: free_ports(1)[0])
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    module: str = "kura_stream"
    """What `python -m` runs: a test may wrap the CLI to inject a fault (see crash_hooks)."""
    serve_args: tuple[str, ...] = ()
    """More arguments of `serve` (e.g. `--role ingest`)."""

    @property
    def env(self) -> dict[str, str]:
        """The KURA_* environment of this instance."""
        t = self.tag
        return {
            **os.environ,
            "KURA_KAFKA_BOOTSTRAP": self.bootstrap,
            "KURA_KAFKA_TOPIC_CONVERSATIONS": f"conv-{t}",
            "KURA_KAFKA_TOPIC_EMBEDDED": f"emb-{t}",
            "KURA_KAFKA_TOPIC_DLQ": f"dlq-{t}",
            "KURA_KAFKA_TOPIC_ASSIGNMENTS": f"asg-{t}",
            "KURA_KAFKA_TOPIC_CLUSTER_EVENTS": f"evt-{t}",
            "KURA_KAFKA_TOPIC_COMMANDS": f"cmd-{t}",
            "KURA_KAFKA_GROUP_ID": f"grp-{t}",
            "KURA_STORE_PATH": str(self.workdir / "store"),
            "KURA_SERVICE_PORT": str(self.port),
            "KURA_SERVICE_EXPORT_DIR": str(self.workdir / "exports"),
            "KURA_EMBEDDER_KIND": self.embedder,
            "KURA_CLUSTERING_RECOMPUTE_EVERY_S": "100000",
            "KURA_CLUSTERING_RECOMPUTE_EVERY_N": "1000000",
            "KURA_CLUSTERING_RECOMPUTE_MIN_OUTLIERS": "1000000",
            "KURA_CLUSTERING_RECOMPUTE_FIRST_AFTER": "1000000",
            **self.extra_env,
        }

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> None:
        """Start `serve` and wait until /health answers."""
        args = [sys.executable, "-m", self.module, "serve", *self.serve_args]
        if self.offline:
            args.append("--offline")
        log = (self.workdir / f"serve-{time.time_ns()}.log").open("wb")
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._healthy(), timeout_s, f"service did not start; see {log.name}")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"service exited with {self.proc.returncode}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def get(self, path: str) -> Any:
        """GET a JSON answer from the API."""
        response = httpx.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def get_any(self, path: str) -> Any:
        """GET a JSON answer whatever its status (/health answers 503 when degraded)."""
        return httpx.get(f"{self.url}{path}", timeout=30).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST to the API and return its JSON answer."""
        response = httpx.post(f"{self.url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `kura-stream ARGS` against this service; its output, whatever the exit code."""
        return subprocess.run(
            [sys.executable, "-m", "kura_stream", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def recompute_state(self, request_id: str) -> str | None:
        """A recompute request's state; None while this run of the service does not know it."""
        try:
            return str(self.get(f"/recompute/{request_id}")["state"])
        except httpx.HTTPStatusError:
            return None

    def recompute(self, timeout_s: float = 300) -> str:
        """Request a recompute, wait until it has completed or failed; return that state."""
        request_id = str(self.post("/recompute")["request_id"])
        finished = ("completed", "failed")
        wait_for(lambda: self.recompute_state(request_id) in finished, timeout_s, "recompute")
        return str(self.recompute_state(request_id))


def wait_for(check: Callable[[], bool], timeout_s: float, message: str) -> None:
    """Poll check() every 0.5 s until it is true; fail with message after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(message)
