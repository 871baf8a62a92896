"""The clusters table: name, size, share, growth and its sparkline, new-cluster markers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from kura_stream.service.api_models import ClusterView
from tui.format import (
    NEW_MARKER,
    SORT_KEYS,
    SortKey,
    base_clusters,
    compact_count,
    display_name,
    filter_views,
    growth,
    increments,
    is_new,
    share,
    sort_views,
    sparkline,
    total_count,
    truncate,
)
from tui.widgets.messages import ClusterChosen

logger = logging.getLogger(__name__)

# (key, label, width) of the fixed columns; the name column takes what is left.
_FIXED: tuple[tuple[str, str, int], ...] = (
    ("new", "New", 4),
    ("size", "Size", 6),
    ("share", "Share", 6),
    ("growth", "Δ", 6),
)
_SORTED_COLUMN: dict[SortKey, str] = {
    "size": "size",
    "growth": "growth",
    "name": "name",
    "newest": "new",
}
_DESCENDING: dict[SortKey, bool] = {"size": True, "growth": True, "name": False, "newest": True}


class ClustersTable(DataTable[Text]):
    """Base clusters, sorted and filtered; Enter on a row sends ClusterChosen.

    The app sets the data with `show()`, the filter with `filter_text`, the order with
    `sort_key` and `reverse` (attributes down); the table rebuilds its rows and keeps the
    cursor on the same cluster.

    Args:
        new_within: Clusters born this recently are marked new.
        id: Widget id.
    """

    def __init__(self, *, new_within: timedelta = timedelta(minutes=10), id: str | None = None):
        super().__init__(cursor_type="row", id=id)
        self.new_within = new_within
        self.views: list[ClusterView] = []
        self.now = datetime.now(UTC)
        self.filter_text = ""
        self.sort_key: SortKey = "size"
        self.reverse = False
        self.shown_ids: list[str] = []
        self._columns_sig: tuple[object, ...] = ()

    def show(self, views: Sequence[ClusterView], now: datetime) -> None:
        """Show new data (the app calls this after each poll)."""
        self.views, self.now = list(views), now
        self.rebuild()

    def set_filter(self, text: str) -> None:
        """Show only clusters whose name or description contains `text`."""
        self.filter_text = text
        self.rebuild()

    def cycle_sort(self) -> SortKey:
        """Sort by the next column (size, growth, name, newest) and return it."""
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.reverse = False
        self.rebuild()
        return self.sort_key

    def toggle_reverse(self) -> None:
        """Flip the sort order."""
        self.reverse = not self.reverse
        self.rebuild()

    def on_resize(self, event: events.Resize) -> None:
        """Fit the name and trend columns to the new width."""
        self.rebuild()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: tell the app which cluster."""
        event.stop()
        if event.row_key.value is not None:
            self.post_message(ClusterChosen(event.row_key.value))

    def _widths(self) -> tuple[int, int]:
        available = max(40, self.size.width - 1)  # one cell kept for the scrollbar
        trend = 12 if available >= 100 else 8
        fixed = sum(w for _, _, w in _FIXED) + trend + 2 * (len(_FIXED) + 2)
        return max(12, available - fixed), trend

    def _ensure_columns(self) -> tuple[int, int]:
        name_w, trend_w = self._widths()
        sig = (name_w, trend_w, self.sort_key, self.reverse)
        if sig == self._columns_sig:
            self.clear()
            return name_w, trend_w
        self._columns_sig = sig
        self.clear(columns=True)
        arrow = "▲" if _DESCENDING[self.sort_key] == self.reverse else "▼"
        sorted_col = _SORTED_COLUMN[self.sort_key]
        columns = [_FIXED[0], ("name", "Cluster", name_w), *_FIXED[1:], ("trend", "Trend", trend_w)]
        for key, label, width in columns:
            title = f"{label}{arrow}" if key == sorted_col else label
            self.add_column(Text(title, style="bold"), width=width, key=key)
        return name_w, trend_w

    def rebuild(self) -> None:
        """Redraw the rows from the current data, filter and order."""
        if not self.is_mounted:
            return
        cursor_id = self._cursor_id()
        name_w, trend_w = self._ensure_columns()
        total = total_count(self.views)
        rows = sort_views(
            filter_views(base_clusters(self.views), self.filter_text),
            self.sort_key,
            reverse=self.reverse,
        )
        for view in rows:
            gained = growth(view.history)
            self.add_row(
                Text(NEW_MARKER, style="bold green")
                if is_new(view, self.now, self.new_within)
                else Text(""),
                Text(
                    truncate(display_name(view), name_w),
                    style="" if view.visible else "dim italic",
                ),
                Text(compact_count(view.count), justify="right"),
                Text(share(view.count, total), justify="right"),
                Text(
                    f"+{compact_count(gained)}" if gained > 0 else str(gained),
                    justify="right",
                    style="green" if gained > 0 else "dim",
                ),
                Text(sparkline(increments(view.history), trend_w), style="cyan"),
                key=view.id,
            )
        self.shown_ids = [v.id for v in rows]
        if cursor_id in self.shown_ids:
            self.move_cursor(row=self.shown_ids.index(cursor_id), animate=False)

    def _cursor_id(self) -> str | None:
        if not self.shown_ids or not 0 <= self.cursor_row < len(self.shown_ids):
            return None
        return self.shown_ids[self.cursor_row]

    def select_cluster(self, cluster_id: str) -> None:
        """Put the cursor on a cluster's row, if it is shown."""
        if cluster_id in self.shown_ids:
            self.move_cursor(row=self.shown_ids.index(cluster_id), animate=False)
