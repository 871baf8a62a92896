"""JSON log lines carry time, level, logger, message, extras and exceptions; aiokafka's flood
is throttled."""

from __future__ import annotations

import json
import logging

import pytest

from kura_stream.log_throttle import ThrottleFilter
from kura_stream.logs import JsonFormatter, configure_logging


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


# --- the throttle on aiokafka's flood --------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_first_of_each_kind_passes_then_one_summary_per_interval() -> None:
    clock = _Clock()
    throttle = ThrottleFilter(interval_s=30.0, clock=clock)
    connect = "Unable connect to node with id %s: %s"
    assert throttle.filter(_record("aiokafka", connect, 1, "refused"))
    assert throttle.filter(_record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 1))
    passed = []
    for i in range(5000):  # 25 s of a 200-a-second flood: nothing more
        clock.now += 0.005
        passed.append(throttle.filter(_record("aiokafka", connect, i, "refused")))
    assert not any(passed)
    clock.now += 6.0  # 31 s after the last line: the next repeat becomes the summary
    summary = _record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 7)
    assert throttle.filter(summary)
    assert summary.levelno == logging.WARNING
    assert summary.levelname == "WARNING"
    text = summary.getMessage()
    assert text.startswith("kafka unreachable? 5,001 similar aiokafka messages in the last 31s")
    assert text.endswith("(last: Failed fetch messages from 7)")
    clock.now += 1.0
    assert not throttle.filter(_record("aiokafka", connect, 2, "refused"))


def test_other_loggers_and_info_lines_pass_untouched() -> None:
    throttle = ThrottleFilter(clock=_Clock())
    for _ in range(3):
        assert throttle.filter(_record("kura_stream.service.serve", "kafka unreachable (%r)", 1))
        assert throttle.filter(_record("aiokafkax", "not a child of aiokafka"))
        info = _record("aiokafka.consumer.group_coordinator", "Joined group %s", "g", level=20)
        assert throttle.filter(info)
        assert info.getMessage() == "Joined group g"


def test_a_quiet_interval_makes_every_kind_new_again() -> None:
    clock = _Clock()
    throttle = ThrottleFilter(interval_s=30.0, clock=clock)
    assert throttle.filter(_record("aiokafka", "Unable to update metadata from %s", [1]))
    assert not throttle.filter(_record("aiokafka", "Unable to update metadata from %s", [1]))
    clock.now += 31.0  # the outage ended; the next one shows its first lines again
    record = _record("aiokafka", "Unable to update metadata from %s", [1])
    assert throttle.filter(record)
    assert record.getMessage() == "Unable to update metadata from [1]"


def test_configure_logging_throttles_aiokafka(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    configure_logging(verbose=False, fmt="text")
    for i in range(2000):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: refused", i)
        logging.getLogger("aiokafka.consumer.fetcher").error("Failed fetch messages from %s", i)
    logging.getLogger("kura_stream.x").warning("our own line")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert "Unable connect to node with id 0" in lines[0]
    assert "Failed fetch messages from 0" in lines[1]
    assert "our own line" in lines[2]
