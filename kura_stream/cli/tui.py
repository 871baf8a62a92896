"""`kura-stream tui`: the live terminal dashboard, or a plain-text snapshot of it with --once."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from kura_stream.service.api_models import ReadAPI
from kura_stream.settings import Settings
from kura_stream.types import utcnow

logger = logging.getLogger(__name__)


def default_url(settings: Settings | None = None) -> str:
    """The service's read API as the settings place it (KURA_SERVICE_HOST / _PORT)."""
    service = (settings or Settings()).service
    return f"http://{service.host}:{service.port}"


async def once_text(api: ReadAPI, *, top: int = 10, source: str = "") -> str:
    """Fetch status and clusters once and format the `--once` snapshot.

    Args:
        api: The read API.
        top: How many base clusters to list.
        source: Where the data comes from, for the heading.

    Returns:
        The snapshot text.

    Raises:
        tui.http_api.ServiceUnavailable: The service did not answer.
    """
    from tui.format import snapshot_text

    status = await api.status()
    views = await api.clusters()
    return snapshot_text(status, views, utcnow(), top=top, source=source)


@contextmanager
def _logging_into_textual() -> Iterator[None]:
    # A stream handler writing to the terminal would tear the dashboard apart while it runs.
    from textual.logging import TextualHandler

    root = logging.getLogger()
    saved = root.handlers[:]
    handler = TextualHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


def _parse_size(size: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", size.strip())
    if not match:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT, got {size!r}", param_hint="--size")
    return int(match[1]), int(match[2])


async def _run(url: str, poll: float) -> None:
    from tui.app import make_app
    from tui.http_api import HttpReadAPI

    async with HttpReadAPI(url) as api:
        await make_app(api, poll_s=poll).run_async()


async def screenshot_svg(api: ReadAPI, size: tuple[int, int]) -> str:
    """Run the dashboard headless until its first poll is shown, and return it as SVG.

    Args:
        api: The read API.
        size: Terminal columns and rows.

    Returns:
        The SVG text (Textual's screenshot).
    """
    from tui.app import make_app

    app = make_app(api, poll_s=3600.0)
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        return app.export_screenshot(title="kura-stream tui")


async def _with_http(url: str, *, top: int, size: tuple[int, int] | None) -> str:
    from tui.http_api import HttpReadAPI

    async with HttpReadAPI(url) as api:
        if size is not None:
            return await screenshot_svg(api, size)
        return await once_text(api, top=top, source=url)


def tui(
    once: bool = typer.Option(
        False, "--once", help="Print a plain-text snapshot (status, top clusters, tree) and exit."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Base URL of the service's read API [default: from KURA_SERVICE_*]."
    ),
    poll: float = typer.Option(2.0, "--poll", min=0.2, help="Seconds between polls."),
    top: int = typer.Option(10, "--top", min=1, help="Clusters listed by --once."),
    screenshot: Path | None = typer.Option(
        None, "--screenshot", help="Save an SVG of the dashboard after its first poll and exit."
    ),
    size: str = typer.Option("120x36", "--size", help="Terminal size of --screenshot, WxH."),
) -> None:
    """The live dashboard of the running service: clusters, hierarchy, map and pipeline."""
    from tui.http_api import ServiceUnavailable

    base_url = url or default_url()
    if once or screenshot is not None:
        shot_size = _parse_size(size) if screenshot is not None else None
        try:
            text = asyncio.run(_with_http(base_url, top=top, size=shot_size))
        except ServiceUnavailable as err:
            typer.echo(f"disconnected: {err}", err=True)
            raise typer.Exit(1) from err
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_text(text, encoding="utf-8")
            typer.echo(f"saved {screenshot}")
            return
        typer.echo(text, nl=not text.endswith("\n"))
        return
    with _logging_into_textual():
        asyncio.run(_run(base_url, poll))
