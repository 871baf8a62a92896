"""The live dashboard: `make_app(api)` builds the Textual app over any ReadAPI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Input

from kura_stream.service.api_models import (
    ClusterDetail,
    ClusterView,
    ReadAPI,
    RecomputeStatus,
    ServiceStatus,
)
from kura_stream.types import utcnow
from tui.format import base_clusters, filter_views, recompute_text, total_count
from tui.http_api import ServiceUnavailable
from tui.widgets.cluster_detail import ClusterDetailPanel
from tui.widgets.cluster_map import ClusterMap
from tui.widgets.cluster_tree import ClusterTree
from tui.widgets.clusters_table import ClustersTable
from tui.widgets.messages import ClusterChosen
from tui.widgets.pipeline import PipelinePanel, PipelineState, ViewBar

logger = logging.getLogger(__name__)

_ACTIVE = ("queued", "running")
_SORT_TITLES = {"size": "by size", "growth": "by growth", "name": "by name", "newest": "newest"}


class DashboardApp(App[None]):
    """Clusters, hierarchy, map and pipeline of a running kura-stream service, polled live.

    Every call to the service runs in a worker, so the screen never waits on the network; a
    failed poll shows "disconnected" over the last data, and the next poll reconnects.

    Args:
        api: Where the data comes from (HttpReadAPI, or a fake in tests).
        poll_s: Seconds between polls.
        clock: The current time (fixed in tests).
        new_within: Clusters born this recently are marked new.
    """

    CSS_PATH = "app.tcss"
    TITLE = "kura-stream"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's API)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "recompute", "Recompute"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("1", "view('table')", "Table"),
        Binding("2", "view('tree')", "Tree"),
        Binding("3", "view('map')", "Map"),
        Binding("escape", "leave_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        api: ReadAPI,
        *,
        poll_s: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
        new_within: timedelta = timedelta(minutes=10),
    ) -> None:
        super().__init__()
        self.api = api
        self.poll_s = poll_s
        self.clock = clock
        self.new_within = new_within
        self.status: ServiceStatus | None = None
        self.views: list[ClusterView] = []
        self.connected = False
        self.error = ""
        self.last_ok_at: datetime | None = None
        self.recompute: RecomputeStatus | None = None
        self.selected_id: str | None = None
        self.detail: ClusterDetail | None = None
        self.view = "table"
        self.polls = 0
        self._polling = False

    def compose(self) -> ComposeResult:
        """Pipeline panel, view bar, the four panels, footer."""
        yield PipelinePanel(id="pipeline")
        yield ViewBar(id="view-bar")
        with Horizontal(id="body", classes="-view-table"):
            with Vertical(id="left"):
                with Vertical(id="table-panel", classes="panel"):
                    yield Input(placeholder="/ filter by name or description", id="filter")
                    yield ClustersTable(new_within=self.new_within, id="clusters")
                with Vertical(id="tree-panel", classes="panel"):
                    yield ClusterTree(id="tree")
            with Vertical(id="right"):
                with Vertical(id="map-panel", classes="panel"):
                    yield ClusterMap(id="map")
                with VerticalScroll(id="detail-panel", classes="panel"):
                    yield ClusterDetailPanel(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        """Title the panels, show the empty state, start polling."""
        self.query_one(PipelinePanel).border_title = "Pipeline"
        titles = {"table": "Clusters", "tree": "Hierarchy", "map": "Map", "detail": "Cluster"}
        for name, title in titles.items():
            self.query_one(f"#{name}-panel").border_title = title
        self._show_sort()
        self.query_one(ClusterDetailPanel).show(None, 0, self.clock())
        self._show_pipeline()
        self.query_one(ClustersTable).focus()
        self.set_interval(self.poll_s, self._start_poll)
        self._start_poll()

    # --- polling -------------------------------------------------------------------------------
    def _start_poll(self) -> None:
        # A slow service must not pile polls up: one at a time, the timer skips while busy.
        if not self._polling:
            self._polling = True
            self._poll_worker()

    @work(group="poll")
    async def _poll_worker(self) -> None:
        try:
            await self.poll_once()
        except NoMatches:  # the answer came back while the app was closing: nothing to show
            logger.debug("poll answered after the screen closed")
        finally:
            self._polling = False

    async def poll_once(self) -> None:
        """Fetch status, clusters, the requested recompute and the chosen cluster; show them.

        A failure of the service never raises: it marks the dashboard disconnected until a
        poll succeeds.
        """
        self.polls += 1
        try:
            recompute = await self._poll_recompute()  # first: status then shows its outcome
            status = await self.api.status()
            views = await self.api.clusters()
            detail = await self._fetch_detail_now(self.selected_id)
        except ServiceUnavailable as err:
            self._disconnected(str(err))
            return
        except Exception as err:  # the dashboard must outlive any bad answer
            logger.exception("poll failed")
            self._disconnected(f"{type(err).__name__}: {err}")
            return
        if not self.connected and self.last_ok_at is not None:
            logger.info("service reachable again")
        self.status, self.views, self.detail = status, views, detail
        self.connected, self.error, self.last_ok_at = True, "", self.clock()
        self._update_recompute(recompute)
        self._show_data()

    async def _poll_recompute(self) -> RecomputeStatus | None:
        rc = self.recompute
        if rc is None or rc.state not in _ACTIVE:
            return rc
        try:
            return await self.api.recompute_status(rc.request_id)
        except KeyError:
            detail = "the service no longer knows this request (restarted?)"
            return rc.model_copy(update={"state": "failed", "detail": detail})

    async def _fetch_detail_now(self, cluster_id: str | None) -> ClusterDetail | None:
        if cluster_id is None:
            return None
        try:
            return await self.api.cluster(cluster_id)
        except KeyError:
            return None  # merged away or hidden since it was chosen

    def _disconnected(self, reason: str) -> None:
        if self.connected or self.error != reason:
            logger.warning("service unavailable: %s", reason)
        self.connected, self.error = False, reason
        self.query_one("#body").add_class("-stale")
        self._show_pipeline()

    def _update_recompute(self, rc: RecomputeStatus | None) -> None:
        before = self.recompute
        self.recompute = rc
        was_active = before is not None and before.state in _ACTIVE
        if rc is not None and was_active and rc.state not in _ACTIVE:
            self.notify(
                recompute_text(rc, self.clock()),
                title="Recompute",
                severity="error" if rc.state == "failed" else "information",
            )

    def _show_data(self) -> None:
        now = self.clock()
        self.query_one("#body").remove_class("-stale")
        table = self.query_one(ClustersTable)
        table.show(self.views, now)
        self._show_counts()
        self.query_one(ClusterTree).show(self.views)
        cluster_map = self.query_one(ClusterMap)
        cluster_map.views = tuple(self.views)
        cluster_map.selected_id = self.selected_id
        if self.selected_id is not None:
            self.query_one(ClusterDetailPanel).show(self.detail, total_count(self.views), now)
        self._show_pipeline()

    def _show_pipeline(self) -> None:
        self.query_one(PipelinePanel).state = PipelineState(
            now=self.clock(),
            status=self.status,
            connected=self.connected,
            error=self.error,
            recompute=self.recompute,
            last_ok_at=self.last_ok_at,
            poll_s=self.poll_s,
        )

    def _show_counts(self) -> None:
        table = self.query_one(ClustersTable)
        base = base_clusters(self.views)
        shown = len(filter_views(base, table.filter_text))
        panel = self.query_one("#table-panel")
        panel.border_subtitle = f"{shown} of {len(base)}" if table.filter_text else f"{len(base)}"

    def _show_sort(self) -> None:
        table = self.query_one(ClustersTable)
        order = _SORT_TITLES[table.sort_key] + (", reversed" if table.reverse else "")
        self.query_one("#table-panel").border_title = f"Clusters ({order})"

    # --- choosing a cluster ----------------------------------------------------------------------
    def on_cluster_chosen(self, message: ClusterChosen) -> None:
        """A widget chose a cluster: highlight it everywhere and fetch its detail."""
        self.choose(message.cluster_id)

    def choose(self, cluster_id: str) -> None:
        """Make `cluster_id` the chosen cluster (table, tree, map and detail follow)."""
        self.selected_id = cluster_id
        self.query_one(ClusterMap).selected_id = cluster_id
        self.query_one(ClustersTable).select_cluster(cluster_id)
        self.query_one(ClusterTree).select_cluster(cluster_id)
        if not self.is_wide and self.view == "table":
            self.action_view("tree")  # the detail sits beside the tree on a small terminal
        self._load_detail(cluster_id)

    @work(exclusive=True, group="detail")
    async def _load_detail(self, cluster_id: str) -> None:
        try:
            detail = await self._fetch_detail_now(cluster_id)
        except ServiceUnavailable as err:
            self._show_detail_error(f"disconnected: {err}")
            return
        except Exception as err:  # the dashboard must outlive any bad answer
            logger.exception("cluster detail failed")
            self._show_detail_error(f"{type(err).__name__}: {err}")
            return
        if cluster_id != self.selected_id:
            return
        self.detail = detail
        if detail is None:
            self._show_detail_error(f"cluster {cluster_id} no longer exists")
            return
        with suppress(NoMatches):  # closing
            self.query_one(ClusterDetailPanel).show(detail, total_count(self.views), self.clock())

    def _show_detail_error(self, message: str) -> None:
        with suppress(NoMatches):  # closing
            self.query_one(ClusterDetailPanel).show_error(message)

    # --- actions ---------------------------------------------------------------------------------
    @property
    def is_wide(self) -> bool:
        """Whether every panel shows at once (a large terminal)."""
        return self.screen.has_class("-wide") and self.screen.has_class("-tall")

    def action_recompute(self) -> None:
        """Ask the service for a full recompute (unless one this dashboard asked for runs)."""
        if self.recompute is not None and self.recompute.state in _ACTIVE:
            self.notify("A recompute is already running.", title="Recompute")
            return
        self._request_recompute()

    @work(exclusive=True, group="recompute")
    async def _request_recompute(self) -> None:
        try:
            rc = await self.api.request_recompute()
        except Exception as err:  # shown, never fatal
            logger.warning("recompute request failed: %s", err)
            self.notify(f"Could not request a recompute: {err}", severity="error")
            return
        self.recompute = rc
        self.notify(f"Recompute requested ({rc.request_id}).", title="Recompute")
        with suppress(NoMatches):  # closing
            self._show_pipeline()

    def action_cycle_sort(self) -> None:
        """Sort the table by the next column."""
        self.query_one(ClustersTable).cycle_sort()
        self._show_sort()

    def action_reverse_sort(self) -> None:
        """Flip the table's order."""
        self.query_one(ClustersTable).toggle_reverse()
        self._show_sort()

    def action_focus_filter(self) -> None:
        """Type a filter for the table."""
        self.action_view("table")
        self.query_one("#filter", Input).focus()

    def action_leave_filter(self) -> None:
        """Leave the filter box, or clear the filter when outside it."""
        box = self.query_one("#filter", Input)
        if box.has_focus:
            self.query_one(ClustersTable).focus()
        elif box.value:
            box.value = ""

    def action_view(self, view: str) -> None:
        """Show a view on a small terminal (table, tree or map); focus it on any terminal."""
        self.view = view
        body = self.query_one("#body")
        for name in ("table", "tree", "map"):
            body.set_class(name == view, f"-view-{name}")
        self.query_one(ViewBar).active = view
        widget = {"table": "#clusters", "tree": "#tree", "map": "#map"}[view]
        self.query_one(widget).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter the table as the user types."""
        self.query_one(ClustersTable).set_filter(event.value)
        self._show_counts()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter box: back to the table."""
        self.query_one(ClustersTable).focus()


def make_app(
    api: ReadAPI,
    *,
    poll_s: float = 2.0,
    clock: Callable[[], datetime] = utcnow,
    new_within: timedelta = timedelta(minutes=10),
) -> DashboardApp:
    """Build the dashboard over a read API.

    Args:
        api: The service's read API (HttpReadAPI, or a fake in tests).
        poll_s: Seconds between polls.
        clock: The current time (fixed in tests, for stable screens).
        new_within: Clusters born this recently are marked new.

    Returns:
        The app, ready for `run()` or `run_test()`.
    """
    return DashboardApp(api, poll_s=poll_s, clock=clock, new_within=new_within)
