"""The dashboard against the read service: recompute, disconnects, HTTP, and `tui --once`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kura_stream.cli.tui import tui
from tests.fakes.read_api import FakeReadAPI, ReadAPIServer, serve
from tests.unit.test_tui_app import names, pipeline, rows, running, screen_text
from tui.http_api import HttpReadAPI, ServiceUnavailable


# --- recompute, disconnects ----------------------------------------------------------------------
async def test_recompute_key_shows_progress_and_outcome() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake) as d:
        app = d.app
        await d.press("r")
        await d.settle()
        assert "recompute rc-1: queued" in pipeline(app)
        await d.press("r")
        await d.settle()
        assert fake.calls.count("request_recompute") == 1  # one at a time
        await d.poll()
        assert "recompute rc-1: running" in pipeline(app)
        await d.poll()
        assert "recompute rc-1: completed, 8 → 8 clusters" in pipeline(app)
        assert "last recompute just now" in pipeline(app)
        assert "completed" in screen_text(app.export_screenshot())


async def test_failed_recompute_is_shown() -> None:
    fake = FakeReadAPI.seeded()
    fake.fail_next_recompute, fake.recompute_steps = True, 1
    async with running(fake) as d:
        app = d.app
        await d.press("r")
        await d.settle()
        await d.poll()
        assert "recompute rc-1: FAILED store unavailable" in pipeline(app)


async def test_offline_shows_disconnected_keeps_running_and_recovers() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake) as d:
        app = d.app
        fake.go_offline("connection refused")
        await d.poll()
        await d.press("r", "s", "2", "1")
        await d.settle()
        assert app.is_running
        assert not app.connected
        assert "✕ disconnected: connection refused" in pipeline(app)
        assert "disconnected" in screen_text(app.export_screenshot())
        assert app.query_one("#body").has_class("-stale")
        assert len(names(app)) == 8  # the last data stays on screen
        fake.go_online()
        fake.grow("c-rx", 10)
        await d.poll()
        assert app.connected
        assert "● live" in pipeline(app)
        assert not app.query_one("#body").has_class("-stale")
        assert rows(app)[names(app).index("Explain regular expressions")][2] == "422"


async def test_unexpected_errors_are_shown_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake) as d:
        app = d.app

        async def broken() -> object:
            raise RuntimeError("bad answer")

        monkeypatch.setattr(fake, "clusters", broken)
        await d.poll()
        assert app.is_running
        assert "RuntimeError: bad answer" in pipeline(app)


async def test_over_http_the_service_goes_away_and_comes_back() -> None:
    fake = FakeReadAPI.seeded()
    server = ReadAPIServer(fake).start()
    async with HttpReadAPI(server.url, timeout_s=1.0) as api, running(api) as d:
        app = d.app
        assert len(names(app)) == 8
        assert app.connected
        server.stop()
        await d.poll()
        assert not app.connected
        assert "disconnected" in pipeline(app)
        server.start()
        try:
            fake.grow("c-hist", 2)
            await d.poll()
            assert app.connected
            assert "240" in [r[2] for r in rows(app)]
        finally:
            server.stop()


# --- `kura-stream tui --once` --------------------------------------------------------------------
def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command()(tui)
    return cli


def test_once_prints_status_top_clusters_and_tree() -> None:
    with serve(FakeReadAPI.seeded()) as server:
        result = CliRunner().invoke(_cli(), ["--once", "--url", server.url, "--top", "3"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"({server.url})" in out.splitlines()[0]
    assert "6.4k conversations · 8 clusters · 310 outliers" in out
    assert "Top clusters (3 of 8, by size)" in out
    assert "1,840   30.4%     +96  Debug Python import errors" in out
    assert "Summarise historical events" in out  # in the tree, though not in the top 3
    assert "╠══ Help with programming (3,212, 53.0%)" in out


def test_once_when_the_service_is_down_exits_1() -> None:
    result = CliRunner().invoke(_cli(), ["--once", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "disconnected" in result.output


def test_screenshot_option_saves_an_svg(tmp_path: Path) -> None:
    target = tmp_path / "shot.svg"
    with serve(FakeReadAPI.seeded()) as server:
        args = ["--url", server.url, "--screenshot", str(target), "--size", "100x30"]
        result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    text = screen_text(target.read_text(encoding="utf-8"))
    assert "Debug Python import errors" in text
    assert "● live" in text


def test_service_unavailable_is_one_exception_type() -> None:
    assert issubclass(ServiceUnavailable, Exception)
    assert not issubclass(ServiceUnavailable, KeyError)
