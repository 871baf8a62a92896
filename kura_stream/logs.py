"""Logging set-up: human-readable lines, or one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

from kura_stream.log_throttle import ThrottleFilter

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, exception, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        return json.dumps(entry, ensure_ascii=False)


LLM_LOGGERS = (
    "instructor",
    "openai",
    "httpx",
    "kura_stream.adapters.llm",
)
"""Loggers of the LLM path, throttled like aiokafka's while the endpoint is down."""


def configure_logging(*, verbose: bool, fmt: Literal["text", "json"]) -> None:
    """Configure the root logger once for the CLI.

    aiokafka's warnings and errors go through a ThrottleFilter: while the broker is down they
    come as the first line of each kind and then one summary per 30 s, not hundreds a second.
    So do the LLM client's: while the endpoint is down every summary of every redelivered
    batch fails, two or three lines each.
    """
    handler = logging.StreamHandler()
    handler.addFilter(ThrottleFilter())
    handler.addFilter(ThrottleFilter(LLM_LOGGERS, note="LLM endpoint unreachable?"))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # One INFO line per HTTP request (readiness polls, API calls) drowns everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
