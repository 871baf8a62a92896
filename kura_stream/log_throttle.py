"""A logging filter that turns a flood of repeated client errors into one summary per interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

THROTTLED_LOGGERS = ("aiokafka",)
"""Logger name prefixes whose warnings and errors are throttled: while the broker is down,
aiokafka logs every failed connect, metadata update, fetch and coordinator lookup (about 400
lines a second from one service, 5,400 in a larger probe)."""
INTERVAL_S = 30.0
"""At most one summary line per this many seconds."""


class ThrottleFilter(logging.Filter):
    """Let the first record of each kind through, then at most one summary per interval.

    A kind is (logger name, level, message template), so "Unable connect to node with id %s"
    is one kind whatever the node. Records below `level`, and records of other loggers, pass
    untouched. A suppressed record that arrives when the interval since the last line has
    passed becomes the summary: "N similar messages in the last 30s were not logged (last:
    ...)". After a quiet interval (no throttled record at all) every kind counts as new again,
    so the next outage shows its first lines again.
    """

    def __init__(
        self,
        prefixes: Iterable[str] = THROTTLED_LOGGERS,
        *,
        interval_s: float = INTERVAL_S,
        level: int = logging.WARNING,
        note: str = "kafka unreachable?",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Throttle the loggers named by prefixes (and their children).

        Args:
            prefixes: Logger names; a record of one of them or a child is throttled.
            interval_s: Seconds between summaries, and the quiet time that resets the kinds.
            level: Records below this level pass untouched.
            note: What the summary starts with (the likely cause).
            clock: Seconds, monotonic (a fake one in tests).
        """
        super().__init__()
        self.prefixes = tuple(prefixes)
        self.interval_s = interval_s
        self.level = level
        self.note = note
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int, str]] = set()
        self._suppressed = 0
        self._last_line = float("-inf")
        self._last_record = float("-inf")

    def _throttles(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return False
        name = record.name
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is logged; a suppressed one may be rewritten into the summary."""
        if not self._throttles(record):
            return True
        now = self.clock()
        kind = (record.name, record.levelno, str(record.msg))
        with self._lock:
            if now - self._last_record > self.interval_s:  # quiet for a while: start afresh
                self._seen.clear()
                self._suppressed = 0
            self._last_record = now
            if kind not in self._seen:
                self._seen.add(kind)
                self._last_line = now
                return True
            self._suppressed += 1
            if now - self._last_line < self.interval_s:
                return False
            count, self._suppressed = self._suppressed, 0
            since, self._last_line = self._last_line, now
        _summarise(record, self.note, count, now - since)
        return True


def _summarise(record: logging.LogRecord, note: str, count: int, seconds: float) -> None:
    """Turn record into the summary of the count records suppressed over seconds."""
    last = record.getMessage()
    record.msg = "%s %s similar %s messages in the last %.0fs were not logged (last: %s)"
    record.args = (note, f"{count:,}", record.name.split(".")[0], seconds, last)
    record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
    record.exc_info = record.exc_text = None
    record.stack_info = None
