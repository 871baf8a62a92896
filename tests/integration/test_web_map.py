"""The web map in headless Chromium over the real service on the real broker."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.types import Conversation, Message, utcnow
from tests.integration.service_harness import ServiceUnderTest, wait_for
from tests.integration.test_service import _payloads, _produce

pytestmark = pytest.mark.kafka

REPO = Path(__file__).parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
"""Screenshots of the page (git-ignored), kept after the run for a person to look at."""
CHROMIUM = shutil.which("chromium")
"""Debian's chromium (scripts/web_deps.sh --browser installs it)."""
BUBBLE_IDS = "[...document.querySelectorAll('#map .bubble')].map(b => b.dataset.clusterId)"


@pytest.fixture(scope="module")
def web_deps() -> None:
    """The pinned d3 the service serves (idempotent; `npm ci` only the first time)."""
    subprocess.run(["bash", str(REPO / "scripts" / "web_deps.sh")], check=True, cwd=REPO)


@pytest.fixture
def service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None, web_deps: None
) -> Iterator[ServiceUnderTest]:
    svc = ServiceUnderTest(
        bootstrap=kafka_bootstrap,
        workdir=tmp_path,
        extra_env={"KURA_CLUSTERING_TOP_LEVEL_CLUSTERS": "4"},
    )
    yield svc
    svc.stop()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    """A page in Debian's headless Chromium (Playwright drives it; no browser download)."""
    from playwright.async_api import async_playwright

    if CHROMIUM is None:
        pytest.fail("no chromium: run scripts/web_deps.sh --browser (apt-get install chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        context = await browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        context.on("pageerror", lambda err: errors.append(str(err)))
        yield context
        await browser.close()
        assert not errors, f"the page threw: {errors}"


def _knitting(n: int) -> list[Conversation]:
    """Near-identical conversations on a topic ShareGPT's sample lacks: they found a cluster."""
    now = utcnow()
    asks = [
        "How do I knit a cable pattern on a wool sweater with circular needles?",
        "Knitting help: my cable pattern on the wool sweater twists the wrong way.",
        "What needles and wool yarn should I use to knit a cable sweater pattern?",
    ]
    return [
        Conversation(
            chat_id=f"knit-{i}",
            created_at=now,
            messages=(
                Message(created_at=now, role="user", content=asks[i % 3] + f" (row {i})"),
                Message(
                    created_at=now,
                    role="assistant",
                    content="Knit the cable rows with a cable needle, crossing stitches "
                    "on the right side of the wool sweater; check the knitting pattern chart.",
                ),
            ),
        )
        for i in range(n)
    ]


async def _until(check: Callable[[], bool], timeout_s: float, message: str) -> None:
    """wait_for without blocking the event loop, so Playwright keeps reading the browser."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.5)


async def _bubbles(page: Any) -> set[str]:
    return set(await page.evaluate(BUBBLE_IDS))


async def test_the_map_shows_the_clusters_and_follows_the_stream(
    service: ServiceUnderTest, page: Any, tmp_path: Path
) -> None:
    sample = load_sharegpt_conversations(700)
    service.start()
    await _produce(service, _payloads(sample[:300]))
    wait_for(lambda: service.get("/status")["conversations"] == 300, 240, "not all stored")
    assert service.recompute() == "completed"
    listed = service.get("/clusters")
    base = {c["id"] for c in listed if c["level"] == 0}
    assert len(base) > 3
    assert any(c["level"] > 0 for c in listed), "no hierarchy"

    await page.goto(service.url + "/?poll_ms=500")
    await page.wait_for_function(f"{BUBBLE_IDS}.length === {len(base)}", timeout=30_000)
    assert await _bubbles(page) == base
    await page.evaluate("window.__loaded_once = true")  # gone if the page reloads
    tops = [c for c in listed if c["parent_id"] is None]
    assert await page.locator("#tree > li").count() == len(tops)

    # Selecting the largest named cluster on the map shows its scrubbed summaries.
    chosen = next(c for c in listed if c["level"] == 0 and c["visible"])
    await page.locator(f'#map .bubble[data-cluster-id="{chosen["id"]}"] circle').click()
    await page.wait_for_selector("#samples li.summary", timeout=15_000)
    expected = service.get(f"/clusters/{chosen['id']}?sample=8")
    shown = await page.locator("#samples li.summary").all_inner_texts()
    assert shown == [s["summary"] for s in expected["sample"]]
    assert await page.locator("#detail h3 .title").inner_text() == chosen["name"]
    assert await page.locator(f'#tree li[data-cluster-id="{chosen["id"]}"] > .row.selected').count()

    # More of the stream, with a topic of its own: a cluster is born and shows up, no reload.
    await _produce(service, _payloads(sample[300:500] + _knitting(12)))
    await _until(lambda: service.get("/status")["conversations"] == 512, 240, "not all stored")
    await _until(
        lambda: bool({c["id"] for c in service.get("/clusters") if c["level"] == 0} - base),
        60,
        "no cluster was born",
    )
    now_base = {c["id"] for c in service.get("/clusters") if c["level"] == 0}
    born = now_base - base
    await page.wait_for_function(
        f"(() => {{ const ids = new Set({BUBBLE_IDS});"
        f" return {sorted(born)!r}.every(id => ids.has(id)); }})()",
        timeout=30_000,
    )
    assert await page.evaluate("window.__loaded_once === true"), "the page reloaded"
    new_marked = await page.locator("#map .bubble.new").evaluate_all(
        "els => els.map(e => e.dataset.clusterId)"
    )
    assert born <= set(new_marked)
    # The selection survived the refreshes.
    selected = await page.locator("#map .bubble.selected").evaluate_all(
        "els => els.map(e => e.dataset.clusterId)"
    )
    assert selected == [chosen["id"]]
    assert await page.locator("#samples li.summary").count() > 0

    await page.wait_for_function(
        "document.querySelector('#pipeline').textContent.includes('conversations512')",
        timeout=15_000,
    )
    shot = tmp_path / "web-map.png"
    await page.screenshot(path=str(shot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "web-map.png")
