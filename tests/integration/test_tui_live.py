"""The dashboard over the real service while conversations stream through the real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kura_stream.datasets import load_sharegpt_conversations
from tests.integration.service_harness import ServiceUnderTest
from tests.integration.test_service import _payloads, _produce
from tui.app import make_app
from tui.http_api import HttpReadAPI
from tui.widgets.clusters_table import ClustersTable
from tui.widgets.pipeline import PipelinePanel

pytestmark = pytest.mark.kafka


@pytest.fixture
def service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None
) -> Iterator[ServiceUnderTest]:
    svc = ServiceUnderTest(bootstrap=kafka_bootstrap, workdir=tmp_path)
    yield svc
    svc.stop()


def _sizes(table: ClustersTable) -> list[str]:
    return [table.get_row_at(i)[2].plain for i in range(table.row_count)]


async def _until(pilot: Pilot[None], check: Callable[[], bool], timeout_s: float) -> bool:
    """Let the app run (its timer polls the service) until check() holds on screen."""
    for _ in range(int(timeout_s / 0.25)):
        await pilot.pause(0.25)
        if check():
            return True
    return False


async def test_clusters_appear_and_grow_on_screen_while_conversations_arrive(
    service: ServiceUnderTest,
) -> None:
    sample = load_sharegpt_conversations(900)
    service.start()
    app = make_app(HttpReadAPI(service.url), poll_s=0.5)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one(ClustersTable)

        def panel() -> str:
            return app.query_one(PipelinePanel).render().plain

        assert await _until(pilot, lambda: "0 conversations" in panel(), 30)
        assert table.row_count == 0  # nothing has arrived yet
        await _produce(service, _payloads(sample[:300]))
        assert await _until(pilot, lambda: "300 conversations" in panel(), 240), panel()
        assert await _until(pilot, lambda: table.row_count > 0, 30), "no cluster on screen"
        first_rows = table.row_count
        first_sizes = _sizes(table)
        await _produce(service, _payloads(sample[300:900]))
        assert await _until(pilot, lambda: "900 conversations" in panel(), 240), panel()
        await pilot.pause(1.0)
        assert table.row_count >= first_rows
        assert _sizes(table) != first_sizes, "cluster sizes did not change on screen"
