"""The local OpenAI-compatible LLM server (llama.cpp): pinned GGUF weights, fetch, verify, run."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from kura_stream.adapters.llm_weights import (
    MODELS,
    ModelIntegrityError,
    PinnedModel,
    ensure_model,
    join_parts,
    sha256_file,
    verify_sha256,
)
from kura_stream.adapters.processes import ManagedProcess, ServiceError
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "LLMServerConfig",
    "LocalLLMServer",
    "ModelIntegrityError",
    "PinnedModel",
    "ensure_model",
    "join_parts",
    "server_command",
    "sha256_file",
    "verify_sha256",
]

HOST = "127.0.0.1"
"""The only interface the local server binds."""
BUILD_HINT = "run scripts/build_llm_server.sh (or scripts/bootstrap.sh)"
"""What to do when llama-cpp-python is missing."""
_STATE = "llm.json"


def llama_cpp_installed() -> bool:
    """True if llama-cpp-python is importable by this interpreter (the server runs on it)."""
    return importlib.util.find_spec("llama_cpp") is not None


@dataclass(frozen=True)
class LLMServerConfig:
    """Everything that decides which model the local server runs and where.

    Attributes:
        model: Name in MODELS of the GGUF to serve.
        alias: Model name clients send (LLMSettings.model).
        port: Port on 127.0.0.1.
        threads: CPU threads for generation.
        ctx: Context window, tokens.
        run_dir: Folder of the PID file, output log and state file.
        cache_dir: The project's cache folder; the model lives in `<cache_dir>/llm`.
    """

    model: str
    alias: str
    port: int
    threads: int
    ctx: int
    run_dir: Path
    cache_dir: Path

    @classmethod
    def from_settings(
        cls, settings: Settings, *, port: int | None = None, run_dir: Path | None = None
    ) -> LLMServerConfig:
        """The config for Settings (its llm section), with optional overrides for tests."""
        llm = settings.llm
        return cls(
            model=llm.local_model,
            alias=llm.model,
            port=port if port is not None else llm.local_port,
            threads=llm.local_threads,
            ctx=llm.local_ctx,
            run_dir=run_dir if run_dir is not None else settings.data_dir / "llm",
            cache_dir=settings.cache_dir,
        )

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the server."""
        return f"http://{HOST}:{self.port}/v1"


def server_command(config: LLMServerConfig, model_file: Path) -> list[str]:
    """The command line that runs llama-cpp-python's OpenAI-compatible server."""
    # fmt: off
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_file),
        "--model_alias", config.alias, "--host", HOST, "--port", str(config.port),
        "--n_ctx", str(config.ctx), "--n_threads", str(config.threads),
    ]
    # fmt: on


def serves(base_url: str, alias: str, *, timeout_s: float = 2.0) -> bool:
    """True if GET <base_url>/models answers 200 and lists alias (not some other server)."""
    try:
        response = httpx.get(f"{base_url}/models", timeout=timeout_s)
        ids = {entry.get("id") for entry in response.json().get("data", [])}
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return response.status_code == 200 and alias in ids


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


@dataclass(frozen=True)
class LLMServerStatus:
    """What `llm status` reports.

    Attributes:
        running: The server process is alive.
        ready: It answers GET /v1/models with our alias.
        pid: Its PID, when running.
        base_url: OpenAI base URL.
        alias: Model name it serves.
        model_file: The GGUF it runs, when known.
    """

    running: bool
    ready: bool
    pid: int | None
    base_url: str
    alias: str
    model_file: str | None

    def to_dict(self) -> dict[str, object]:
        """The status as a JSON-ready dict."""
        return asdict(self)


class LocalLLMServer:
    """The local server of one LLMServerConfig, known by the PID file in its run dir."""

    def __init__(self, config: LLMServerConfig) -> None:
        """Wrap a config; nothing starts until start()."""
        self.config = config
        self.process = ManagedProcess("llm", config.run_dir)

    @property
    def state_file(self) -> Path:
        """What the running server was started with (port, alias, model file)."""
        return self.config.run_dir / _STATE

    def _state(self) -> dict[str, object]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _running_as(self) -> tuple[str, str, str | None]:
        """(base_url, alias, model file) of the running server, else of the config."""
        state = self._state()
        return (
            str(state.get("base_url", self.config.base_url)),
            str(state.get("alias", self.config.alias)),
            str(state["model_file"]) if "model_file" in state else None,
        )

    def _ready(self) -> bool:
        base_url, alias, _ = self._running_as()
        return serves(base_url, alias) and self.process.pid() is not None

    def status(self, *, check: bool = True) -> LLMServerStatus:
        """Whether the server runs and answers, its PID, address and model.

        Args:
            check: Ask GET /v1/models to test that it answers (else ready=False).
        """
        pid = self.process.pid()
        return self._status(pid, ready=pid is not None and check and self._ready())

    def _status(self, pid: int | None, *, ready: bool) -> LLMServerStatus:
        base_url, alias, model_file = self._running_as()
        return LLMServerStatus(pid is not None, ready, pid, base_url, alias, model_file)

    def start(self, *, timeout_s: float = 120.0) -> LLMServerStatus:
        """Fetch and verify the model if needed, start the server, wait until it answers.

        Starting a server that already runs with the same port and alias is harmless: it waits
        for that one to answer and reports it.

        Args:
            timeout_s: How long to wait for the server to answer.

        Returns:
            The status of the running, answering server.

        Raises:
            ServiceError: llama-cpp-python is missing, the port is taken, a server with another
                port or alias runs from this run dir, or the server did not come up (it is
                stopped again, so no half-started process is left).
            ModelIntegrityError: the downloaded model does not match its pinned hash.
        """
        if (pid := self.process.pid()) is not None:
            base_url, alias, _ = self._running_as()
            if (base_url, alias) != (self.config.base_url, self.config.alias):
                raise ServiceError(
                    f"an LLM server already runs as PID {pid} at {base_url} serving {alias!r}; "
                    "stop it first (kura-stream llm stop)"
                )
            logger.info("LLM server already runs as PID %d on %s", pid, base_url)
            self.process.wait_ready(self._ready, timeout_s=timeout_s)
            return self._status(pid, ready=True)
        if not llama_cpp_installed():
            raise ServiceError(f"llama-cpp-python is not installed in {sys.prefix}: {BUILD_HINT}")
        if _port_open(self.config.port):
            raise ServiceError(f"{HOST}:{self.config.port} is already in use")
        model_file = ensure_model(self.config.model, self.config.cache_dir)
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        state = {"base_url": self.config.base_url, "alias": self.config.alias}
        self.state_file.write_text(json.dumps({**state, "model_file": str(model_file)}))
        started = time.monotonic()
        pid = self.process.start(server_command(self.config, model_file), cwd=self.config.run_dir)
        try:
            self.process.wait_ready(self._ready, timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "LLM server ready on %s in %.1fs (PID %d, %s as %r)",
            self.config.base_url,
            time.monotonic() - started,
            pid,
            self.config.model,
            self.config.alias,
        )
        return self._status(pid, ready=True)

    def stop(self, *, timeout_s: float = 30.0) -> bool:
        """Stop the server by its PID (SIGTERM, then SIGKILL after timeout_s).

        Returns:
            True if it ran and is gone now, False if it was not running.
        """
        pid = self.process.pid()
        stopped = self.process.stop(timeout_s=timeout_s)
        if pid is not None:
            # If this process started it, reap it: a zombie would linger in the process table.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if stopped:
            logger.info("LLM server on %s stopped", self._running_as()[0])
        return stopped
