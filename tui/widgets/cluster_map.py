"""The 2-D map: base clusters as points sized by count, scaled to the widget, selection shown."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from kura_stream.service.api_models import ClusterView
from tui.format import POINT_GLYPHS, MapPoint, display_name, map_points, nearest_point, truncate
from tui.widgets.messages import ClusterChosen

logger = logging.getLogger(__name__)

_PALETTE = ("cyan", "magenta", "green", "yellow", "bright_blue", "red", "bright_cyan", "white")
_SELECTED = "bold black on yellow"


class ClusterMap(Widget):
    """Base clusters at their (x, y), redrawn when clusters, positions, selection or size change.

    Points take the colour of their top-level topic; the selected cluster is highlighted and
    named. A click chooses the nearest cluster.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right,j", "step(1)", "Next", show=False),
        Binding("up,left,k", "step(-1)", "Previous", show=False),
    ]
    can_focus = True
    views: reactive[tuple[ClusterView, ...]] = reactive(())
    selected_id: reactive[str | None] = reactive(None)

    def _grid_size(self) -> tuple[int, int]:
        return self.size.width, max(0, self.size.height - 1)  # last line: the legend

    def points(self) -> list[MapPoint]:
        """The points as drawn at the current size (a blank column kept at either side)."""
        width, height = self._grid_size()
        margin = 1 if width >= 8 else 0
        return [
            replace(p, col=p.col + margin)
            for p in map_points(self.views, width - 2 * margin, height)
        ]

    def _colours(self) -> dict[str, str]:
        by_id = {v.id: v for v in self.views}

        def top(view: ClusterView) -> str:
            seen: set[str] = set()
            while view.parent_id in by_id and view.id not in seen:
                seen.add(view.id)
                view = by_id[view.parent_id]
            return view.id

        tops = sorted({top(v) for v in self.views if v.level == 0})
        colour_of = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(tops)}
        return {v.id: colour_of[top(v)] for v in self.views if v.level == 0}

    def render(self) -> Text:
        """The map as text: one line per row, then a legend."""
        width, height = self._grid_size()
        cells: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
        by_id = {v.id: v for v in self.views}
        colours = self._colours()
        selected: MapPoint | None = None
        for p in self.points():
            view = by_id[p.cluster_id]
            style = colours.get(p.cluster_id, "") if view.visible else "dim"
            cells[p.row][p.col] = (p.glyph, style)
            if p.cluster_id == self.selected_id:
                selected = p
        if selected is not None:
            cells[selected.row][selected.col] = (selected.glyph, _SELECTED)
            self._label(cells, selected, display_name(by_id[selected.cluster_id]))
        lines = [Text.assemble(*row) for row in cells]
        legend = Text.assemble(
            (f"{POINT_GLYPHS[0]} {POINT_GLYPHS[1]} {POINT_GLYPHS[2]} size", "dim"),
            ("  ", ""),
            (f"{len([v for v in self.views if v.level == 0])} clusters", "dim"),
        )
        if not self.views:
            legend = Text("no clusters yet", style="dim")
        return Text("\n").join([*lines, legend])

    @staticmethod
    def _label(cells: list[list[tuple[str, str]]], point: MapPoint, name: str) -> None:
        width = len(cells[point.row])
        right, left = width - point.col - 2, point.col - 1
        if right >= len(name) or right >= left:
            text, start = truncate(name, right), point.col + 2
        else:
            text = truncate(name, left)
            start = point.col - 1 - len(text)
        for i, ch in enumerate(text):
            cells[point.row][start + i] = (ch, "bold yellow")

    def on_click(self, event: events.Click) -> None:
        """Choose the cluster nearest to the click."""
        point = nearest_point(self.points(), event.x, event.y)
        if point is not None:
            self.post_message(ClusterChosen(point.cluster_id))

    def action_step(self, delta: int) -> None:
        """Choose the next (or previous) cluster by size."""
        base = sorted((v for v in self.views if v.level == 0), key=lambda v: (-v.count, v.id))
        if not base:
            return
        ids = [v.id for v in base]
        i = ids.index(self.selected_id) + delta if self.selected_id in ids else 0
        self.post_message(ClusterChosen(ids[i % len(ids)]))
