"""JSON log lines carry time, level, logger, message, extras and exceptions."""

from __future__ import annotations

import json
import logging

from kura_stream.logs import JsonFormatter


def test_json_lines() -> None:
    record = logging.LogRecord(
        "kura.x", logging.WARNING, __file__, 1, "dead letter at %s", ("parse",), None
    )
    record.chat_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "kura.x"
    assert entry["message"] == "dead letter at parse"
    assert entry["chat_id"] == "abc"
    assert entry["time"].endswith("+00:00")


def test_exceptions_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("k", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
