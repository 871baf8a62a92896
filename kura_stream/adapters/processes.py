"""Local background services (the Kafka broker, the LLM server): start, find by PID file, stop."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service failed to start, to answer, or to stop."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); /proc tells the truth on Linux.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    return True


@dataclass(frozen=True)
class ManagedProcess:
    """A background process known by its PID file, with its output in a log file.

    Attributes:
        name: Human name for messages ("kafka", "llm").
        run_dir: Folder holding `<name>.pid` and `<name>.log`.
    """

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        """Where the PID is kept while the process runs."""
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Where the process writes stdout and stderr."""
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The PID of the running process, or None (a stale PID file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        """Start the command in its own session, detached, and record its PID.

        Returns:
            The new PID.

        Raises:
            ServiceError: if the process is already running.
        """
        if (running := self.pid()) is not None:
            raise ServiceError(f"{self.name} already runs as PID {running}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        logger.info("started %s as PID %d (log %s)", self.name, proc.pid, self.log_file)
        return proc.pid

    def wait_ready(self, ready: Callable[[], bool], *, timeout_s: float) -> None:
        """Poll ready() until it returns True, failing early if the process dies.

        Raises:
            ServiceError: the process exited, or ready() stayed false for timeout_s.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise ServiceError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.5)
        raise ServiceError(
            f"{self.name} did not answer within {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def stop(self, *, timeout_s: float = 30.0) -> bool:
        """Stop the process group: SIGTERM, then SIGKILL after timeout_s.

        Returns:
            True if a process was running and is now gone, False if none ran.
        """
        pid = self.pid()
        if pid is None:
            return False
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            logger.warning("%s (PID %d) ignored SIGTERM; killing it", self.name, pid)
            self._signal(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
