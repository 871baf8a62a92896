"""The dashboard driven by Pilot over FakeReadAPI: table, tree, detail, map, layouts, goldens."""

from __future__ import annotations

import difflib
import html
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kura_stream.service.api_models import ReadAPI
from kura_stream.tree import HIDDEN_LABEL
from tests.fakes.read_api import NOW, FakeReadAPI
from tui.app import DashboardApp, make_app
from tui.widgets.cluster_detail import ClusterDetailPanel
from tui.widgets.cluster_map import ClusterMap
from tui.widgets.cluster_tree import ClusterTree
from tui.widgets.clusters_table import ClustersTable
from tui.widgets.pipeline import PipelinePanel

SMALL, LARGE = (80, 24), (140, 40)
SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
UPDATE = os.environ.get("KURA_UPDATE_SNAPSHOTS") == "1"
"""KURA_UPDATE_SNAPSHOTS=1 rewrites the goldens under tests/snapshots/ instead of comparing."""


# --- helpers ---------------------------------------------------------------------------------
@dataclass
class Dash:
    """A running dashboard and its pilot."""

    app: DashboardApp
    pilot: Pilot[None]

    async def settle(self) -> None:
        await self.app.workers.wait_for_complete()
        await self.pilot.pause()

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.settle()

    async def poll(self) -> None:
        await self.app.poll_once()
        await self.pilot.pause()


@asynccontextmanager
async def running(
    api: ReadAPI, size: tuple[int, int] = SMALL, poll_s: float = 3600.0
) -> AsyncIterator[Dash]:
    """The app over `api` with a fixed clock, after its first poll."""
    app = make_app(api, poll_s=poll_s, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        dash = Dash(app, pilot)
        await dash.settle()
        yield dash


def rows(app: DashboardApp) -> list[list[str]]:
    table = app.query_one(ClustersTable)
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


def names(app: DashboardApp) -> list[str]:
    return [r[1] for r in rows(app)]


def pipeline(app: DashboardApp) -> str:
    return app.query_one(PipelinePanel).render().plain


def detail(app: DashboardApp) -> str:
    return str(app.query_one(ClusterDetailPanel).render())


_SVG_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#terminal-\d+-line-(\d+)\)">([^<]*)</text>'
)


def screen_text(svg: str, char_width: float = 12.2) -> str:
    """The normalised form of an SVG screenshot: its characters on a grid, styles dropped."""
    grid: dict[int, dict[int, str]] = {}
    for x, line, chars in _SVG_TEXT.findall(svg):
        col = round(float(x) / char_width)
        for i, ch in enumerate(html.unescape(chars).replace("\xa0", " ")):
            grid.setdefault(int(line), {})[col + i] = ch
    lines = []
    for row in range(max(grid, default=-1) + 1):
        cells = grid.get(row, {})
        lines.append("".join(cells.get(c, " ") for c in range(max(cells, default=-1) + 1)))
    return "\n".join(line.rstrip() for line in lines)


def assert_matches_golden(svg: str, name: str, tmp_path: Path) -> None:
    golden = SNAPSHOTS / f"{name}.svg"
    if UPDATE or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(svg, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote missing golden {golden}; check it in")
    expected = screen_text(golden.read_text(encoding="utf-8"))
    actual = screen_text(svg)
    if actual != expected:
        (tmp_path / f"{name}.svg").write_text(svg, encoding="utf-8")
        diff = "\n".join(
            difflib.unified_diff(expected.splitlines(), actual.splitlines(), lineterm="")
        )
        pytest.fail(f"{name} differs from its golden (KURA_UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


# --- the clusters table ------------------------------------------------------------------------
async def test_table_shows_seeded_clusters_on_80x24() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app
        assert names(app)[:3] == [
            "Debug Python import errors",
            "Draft cover letters for job applicat…",
            "Write and optimise SQL queries",
        ]
        assert rows(app)[0][2:5] == ["1.8k", "30.4%", "+96"]
        assert len(rows(app)[0][5]) == 8  # the growth sparkline
        assert names(app)[-1] == HIDDEN_LABEL
        text = screen_text(app.export_screenshot())
        assert "● live" in text
        assert "8 clusters · 310 outliers" in text
        assert "lag 12" in text
        assert "DLQ 3" in text
        assert "last recompute 7m ago" in text
        assert "r Recompute" in text
        assert "s Sort" in text
        assert "q Quit" in text


async def test_live_stream_clusters_grow_and_appear_on_screen() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake, poll_s=0.05) as d:
        app = d.app
        first_polls = app.polls
        fake.grow("c-sql", 1100)
        fake.add_cluster("c-new", "Plan trips to Japan", count=70, parent_id="m-learn", x=3, y=3)
        for _ in range(250):  # the timer polls; no poll is started by the test
            await d.pilot.pause(0.02)
            if "Plan trips to Japan" in names(app):
                break
        await d.settle()
        assert app.polls > first_polls
        assert names(app)[0] == "Write and optimise SQL queries"
        assert rows(app)[0][2] == "2.1k"
        assert rows(app)[0][4] == "+1.1k"
        new = rows(app)[names(app).index("Plan trips to Japan")]
        assert new[0] == "new"
        assert new[2] == "70"
        assert sum(r[0] == "new" for r in rows(app)) == 1
        assert "new" in screen_text(app.export_screenshot())
        tree = app.query_one(ClusterTree)
        assert "Plan trips to Japan" in str(tree.nodes_by_id["c-new"].label)
        assert str(tree.nodes_by_id["c-sql"].label).startswith("2,060 ")
        assert "c-new" in {v.id for v in app.query_one(ClusterMap).views}


async def test_filter_narrows_rows_and_escape_clears_it() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app
        await d.press("slash", *"python")
        assert names(app) == ["Debug Python import errors"]
        assert app.query_one("#table-panel").border_subtitle == "1 of 8"
        await d.press("escape")
        assert app.focused is app.query_one(ClustersTable)
        await d.pilot.press("q")  # the filter box lost focus: q quits, it is not typed
        await d.settle()
        assert not app.is_running


async def test_filter_matches_descriptions_and_survives_polls() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake) as d:
        app = d.app
        await d.press("slash", *"tone", "enter")
        assert names(app) == ["Rewrite emails to sound more polite"]
        fake.grow("c-py", 5)
        await d.poll()
        assert names(app) == ["Rewrite emails to sound more polite"]
        await d.press("escape")
        assert len(names(app)) == 8


async def test_sort_key_cycles_columns_and_reverses() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app
        panel = app.query_one("#table-panel")
        assert panel.border_title == "Clusters (by size)"
        await d.press("s")
        assert panel.border_title == "Clusters (by growth)"
        assert names(app)[:2] == [
            "Debug Python import errors",
            "Draft cover letters for job applicat…",
        ]
        assert [r[4] for r in rows(app)][:3] == ["+96", "+69", "+50"]
        await d.press("s")
        assert names(app)[:2] == [
            "Debug Python import errors",
            "Draft cover letters for job applicat…",
        ]
        assert names(app)[2:4] == [
            "Explain regular expressions",
            "Rewrite emails to sound more polite",
        ]
        await d.press("S")
        assert panel.border_title == "Clusters (by name, reversed)"
        assert names(app)[0] == HIDDEN_LABEL
        assert names(app)[1] == "Write and optimise SQL queries"
        await d.press("s", "s")
        assert panel.border_title == "Clusters (by size)"
        assert names(app)[0] == "Debug Python import errors"


# --- hierarchy, detail, map ----------------------------------------------------------------------
async def test_choosing_a_tree_node_shows_description_and_summaries() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake) as d:
        app = d.app
        await d.press("2")
        tree = app.query_one(ClusterTree)
        assert app.focused is tree
        assert tree.display
        labels = [str(n.label) for n in tree.root.children]
        assert labels[0] == "3,212 Help with programming 53.0%"
        tree.select_cluster("c-sql")
        await d.settle()
        await d.press("enter")
        await d.settle()
        assert app.selected_id == "c-sql"
        assert "cluster c-sql" in fake.calls
        shown = detail(app)
        assert "Write and optimise SQL queries" in shown
        assert "Users ask for joins, window functions and faster queries." in shown
        assert "Sample summaries" in shown
        assert "a running total per customer with a window function" in shown
        assert app.query_one(ClusterMap).selected_id == "c-sql"
        assert "Sample summaries" in screen_text(app.export_screenshot())


async def test_hidden_cluster_shows_no_name_or_summaries() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app
        app.choose("c-tiny")
        await d.settle()
        shown = detail(app)
        assert HIDDEN_LABEL in shown
        assert "Too few conversations" in shown
        assert "Sample summaries" not in shown
        assert "Rare niche topic" not in shown


async def test_enter_in_table_chooses_the_row_and_opens_the_tree_view() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app
        await d.press("down", "enter")
        await d.settle()
        assert app.selected_id == "c-cv"
        assert app.view == "tree"
        assert "Users ask for cover letters tailored to a job ad." in detail(app)
        tree = app.query_one(ClusterTree)
        assert tree.cursor_node is not None
        assert tree.cursor_node.data == "c-cv"


async def test_map_scales_to_its_size_moves_points_and_clicks_choose() -> None:
    fake = FakeReadAPI.seeded()
    async with running(fake, size=LARGE) as d:
        app = d.app
        cluster_map = app.query_one(ClusterMap)
        width, height = cluster_map.size
        points = {p.cluster_id: p for p in cluster_map.points()}
        assert {p.col for p in points.values()} >= {1, width - 2}  # a margin at either side
        assert {p.row for p in points.values()} >= {0, height - 2}
        assert points["c-py"].glyph == "●"
        assert points["c-hist"].glyph == "·"
        before = points["c-py"]
        fake.move("c-py", 4.0, 0.0)
        await d.poll()
        moved = {p.cluster_id: p for p in cluster_map.points()}["c-py"]
        assert (moved.col, moved.row) != (before.col, before.row)
        await d.pilot.click("#map", offset=(moved.col, moved.row))
        await d.settle()
        assert app.selected_id == "c-py"
        assert cluster_map.selected_id == "c-py"
        assert "Debug Python import errors" in cluster_map.render().plain  # the label
        await d.press("3", "down")
        await d.settle()
        assert app.selected_id == "c-cv"  # the next largest


# --- layouts -------------------------------------------------------------------------------------
async def test_small_terminal_shows_one_view_at_a_time() -> None:
    async with running(FakeReadAPI.seeded()) as d:
        app = d.app

        def shown() -> set[str]:
            panels = ("table", "tree", "map", "detail")
            return {p for p in panels if app.query_one(f"#{p}-panel").region.area > 0}

        assert shown() == {"table"}
        await d.press("2")
        assert shown() == {"tree", "detail"}
        await d.press("3")
        assert shown() == {"map", "detail"}
        await d.press("1")
        assert shown() == {"table"}


async def test_large_terminal_shows_every_panel() -> None:
    async with running(FakeReadAPI.seeded(), size=LARGE) as d:
        app = d.app
        for panel in ("table", "tree", "map", "detail"):
            region = app.query_one(f"#{panel}-panel").region
            assert (region.width > 50, region.height > 10) == (True, True), panel
        assert app.query_one("#view-bar").region.area == 0
        assert len(rows(app)) == 8
        assert app.query_one(ClustersTable).size.height >= 12


# --- layout goldens (normalised SVG screenshots under tests/snapshots/) ---------------------------
async def test_snapshot_small(tmp_path: Path) -> None:
    fake = FakeReadAPI.seeded()
    fake.add_cluster("c-new", "Plan trips to Japan", count=70, parent_id="m-learn", x=3, y=3)
    async with running(fake) as d:
        app = d.app
        assert_matches_golden(app.export_screenshot(), "dashboard_80x24", tmp_path)


async def test_snapshot_large_with_selection(tmp_path: Path) -> None:
    fake = FakeReadAPI.seeded()
    fake.add_cluster("c-new", "Plan trips to Japan", count=70, parent_id="m-learn", x=3, y=3)
    async with running(fake, size=LARGE) as d:
        app = d.app
        app.choose("c-sql")
        await d.settle()
        assert_matches_golden(app.export_screenshot(), "dashboard_140x40", tmp_path)
