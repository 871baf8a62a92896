"""Pure formatting helpers of the dashboard: counts, shares, times, sparklines, map, snapshot."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kura_stream.service.api_models import ClusterView, RecomputeStatus, ServiceStatus
from kura_stream.tree import HIDDEN_LABEL, walk

logger = logging.getLogger(__name__)

SPARK_BARS = "▁▂▃▄▅▆▇█"
POINT_GLYPHS = ("·", "•", "●")
"""Map glyphs from small to large clusters."""
SortKey = Literal["size", "growth", "name", "newest"]
SORT_KEYS: tuple[SortKey, ...] = ("size", "growth", "name", "newest")
"""The table's sort columns, in the order the sort key cycles through them."""
NEW_MARKER = "new"


def compact_count(n: int) -> str:
    """A count in at most five characters: 999, 1.2k, 12.3k, 123k, 1.2M.

    Args:
        n: A non-negative count (negative counts keep their sign).

    Returns:
        The short form.
    """
    if n < 0:
        return "-" + compact_count(-n)
    if n < 1000:
        return str(n)
    for suffix, limit in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        value = n / limit
        if value < 99.95:
            return f"{value:.1f}{suffix}"
        if value < 999.5:
            return f"{value:.0f}{suffix}"
    return f"{n / 1e9:.0f}G"


def share(part: int, total: int) -> str:
    """`part` as a percentage of `total`, one decimal: "12.3%", "<0.1%", or "-" without a total."""
    if total <= 0:
        return "-"
    pct = 100.0 * part / total
    if 0 < pct < 0.05:
        return "<0.1%"
    return f"{pct:.1f}%"


def relative_time(then: datetime | None, now: datetime) -> str:
    """How long ago `then` was: "just now", "42s ago", "5m ago", "3h ago", "2d ago", "never"."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def duration(seconds: float) -> str:
    """A duration as "12s", "3m05s" or "2h04m"."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def increments(history: Sequence[int]) -> list[int]:
    """Growth per sample of a cumulative count history (shrinks count as zero)."""
    return [max(0, b - a) for a, b in itertools.pairwise(history)]


def growth(history: Sequence[int]) -> int:
    """Members gained over the history window (last sample minus first)."""
    return history[-1] - history[0] if len(history) >= 2 else 0


def sparkline(values: Sequence[int | float], width: int) -> str:
    """Values as a bar string of at most `width` characters, scaled from zero to their maximum.

    Longer series are folded into `width` buckets (each bucket's mean), so the whole window
    shows; an all-zero series is a flat baseline.

    Args:
        values: The series, oldest first.
        width: Maximum characters.

    Returns:
        The sparkline ("" for no values or no width).
    """
    if width <= 0 or not values:
        return ""
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / max(1, b - a) for a, b in itertools.pairwise(edges)]
    top = max(values)
    if top <= 0:
        return SPARK_BARS[0] * len(values)
    last = len(SPARK_BARS) - 1
    return "".join(SPARK_BARS[min(last, math.ceil(v / top * last))] for v in values)


def display_name(view: ClusterView) -> str:
    """The name to show: the hidden label for clusters below the size floor."""
    if not view.visible:
        return HIDDEN_LABEL
    return view.name or "(unnamed)"


def truncate(text: str, width: int) -> str:
    """`text` cut to `width` characters, with an ellipsis when cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def is_new(view: ClusterView, now: datetime, within: timedelta) -> bool:
    """Whether the cluster was created within `within` before `now`."""
    return view.created_at is not None and now - view.created_at <= within


def base_clusters(views: Iterable[ClusterView]) -> list[ClusterView]:
    """The level-0 clusters (the ones conversations are assigned to)."""
    return [v for v in views if v.level == 0]


def total_count(views: Iterable[ClusterView]) -> int:
    """Conversations in clusters: the sum over base clusters (meta counts repeat them)."""
    return sum(v.count for v in views if v.level == 0)


def filter_views(views: Iterable[ClusterView], text: str) -> list[ClusterView]:
    """Clusters whose shown name or description contains `text` (case-insensitive)."""
    needle = text.strip().casefold()
    if not needle:
        return list(views)
    return [
        v
        for v in views
        if needle in display_name(v).casefold()
        or (v.visible and needle in v.description.casefold())
    ]


def sort_views(
    views: Iterable[ClusterView], key: SortKey, *, reverse: bool = False
) -> list[ClusterView]:
    """Clusters in table order: size, growth and newest descending, name ascending.

    Ties break by id so the order is stable across polls; `reverse` flips the whole order.
    """
    items = sorted(views, key=lambda v: v.id)
    if key == "size":
        items.sort(key=lambda v: -v.count)
    elif key == "growth":
        items.sort(key=lambda v: (-growth(v.history), -v.count))
    elif key == "name":
        items.sort(key=lambda v: (not v.visible, display_name(v).casefold()))
    else:
        items.sort(key=lambda v: -(v.created_at.timestamp() if v.created_at else -math.inf))
    return items[::-1] if reverse else items


@dataclass(frozen=True)
class TreeRow:
    """One line of the hierarchy: a cluster, its depth, and the 'last sibling' flags above it."""

    view: ClusterView
    depth: int
    last: bool
    ancestors_last: tuple[bool, ...]


def tree_rows(views: Sequence[ClusterView]) -> list[TreeRow]:
    """The hierarchy depth-first, largest first; nothing is listed under a hidden cluster.

    Args:
        views: Clusters of all levels, linked by parent_id.

    Returns:
        One row per listed cluster, in display order.
    """
    rows: list[TreeRow] = []
    lasts: list[bool] = []
    hidden_depth: int | None = None
    by_id = {v.id: v for v in views}
    for cluster, depth, last in walk(views):
        if hidden_depth is not None and depth > hidden_depth:
            continue
        view = by_id[cluster.id]
        hidden_depth = None if view.visible else depth
        del lasts[depth:]
        rows.append(TreeRow(view, depth, last, tuple(lasts)))
        lasts.append(last)
    return rows


def tree_label(view: ClusterView, total: int) -> str:
    """A hierarchy label: "Name (1,234, 10.0%)"."""
    return f"{display_name(view)} ({view.count:,}, {share(view.count, total)})"


@dataclass(frozen=True)
class MapPoint:
    """A cluster placed on a character grid."""

    col: int
    row: int
    glyph: str
    cluster_id: str
    count: int


def point_glyph(count: int, max_count: int) -> str:
    """The glyph of a cluster on the map: its area (not its radius) follows its count."""
    if max_count <= 0:
        return POINT_GLYPHS[0]
    radius = math.sqrt(max(0, count) / max_count)
    if radius >= 0.7:
        return POINT_GLYPHS[2]
    return POINT_GLYPHS[1] if radius >= 0.4 else POINT_GLYPHS[0]


def _scale(value: float, low: float, high: float, cells: int) -> int:
    if cells <= 1 or high - low <= 1e-12:
        return max(0, cells // 2)
    return min(cells - 1, max(0, round((value - low) / (high - low) * (cells - 1))))


def map_points(views: Iterable[ClusterView], width: int, height: int) -> list[MapPoint]:
    """Base clusters placed on a `width` x `height` grid, smallest first (larger ones win a cell).

    Positions are scaled to fill the grid; y grows upwards as on a plot.

    Args:
        views: Clusters; only level 0 is placed.
        width: Grid columns.
        height: Grid rows.

    Returns:
        The points, in drawing order.
    """
    base = base_clusters(views)
    if width <= 0 or height <= 0 or not base:
        return []
    xs = [v.x for v in base]
    ys = [v.y for v in base]
    top = max(v.count for v in base)
    ordered = sorted(base, key=lambda v: (v.count, v.id))
    return [
        MapPoint(
            col=_scale(v.x, min(xs), max(xs), width),
            row=height - 1 - _scale(v.y, min(ys), max(ys), height),
            glyph=point_glyph(v.count, top),
            cluster_id=v.id,
            count=v.count,
        )
        for v in ordered
    ]


def nearest_point(points: Sequence[MapPoint], col: int, row: int) -> MapPoint | None:
    """The point closest to a cell (rows count double: cells are about twice as tall as wide)."""
    if not points:
        return None
    return min(points, key=lambda p: ((p.col - col) ** 2 + (2 * (p.row - row)) ** 2, -p.count))


def pipeline_fields(status: ServiceStatus, now: datetime) -> list[tuple[str, str]]:
    """The pipeline panel as (label, value) pairs, in display order."""
    return [
        ("throughput", f"{status.throughput_per_s:.1f}/s"),
        ("lag", compact_count(status.lag)),
        ("DLQ", compact_count(status.dlq)),
        ("last recompute", relative_time(status.last_recompute_at, now)),
        ("store", "ok" if status.store_ok else "DOWN"),
        ("broker", "ok" if status.broker_ok else "DOWN"),
    ]


def totals_text(status: ServiceStatus) -> str:
    """The totals line: "12.3k conversations · 42 clusters · 310 outliers"."""
    return (
        f"{compact_count(status.conversations)} conversations · "
        f"{status.clusters:,} clusters · {compact_count(status.outliers)} outliers"
    )


def recompute_text(rc: RecomputeStatus | None, now: datetime, *, running: bool = False) -> str:
    """One line on the last requested recompute: state, elapsed time or outcome.

    Args:
        rc: The recompute this dashboard requested, if any.
        now: The current time.
        running: Whether the service says a recompute runs (someone else's, perhaps).

    Returns:
        E.g. "recompute rc-1: running 12s" or "recompute rc-1: completed, 42 → 45 clusters".
    """
    if rc is None:
        return "recompute: running" if running else "recompute: idle"
    head = f"recompute {rc.request_id}:"
    if rc.state == "queued":
        return f"{head} queued"
    if rc.state == "running":
        since = rc.started_at or now
        return f"{head} running {duration((now - since).total_seconds())}"
    if rc.state == "failed":
        return f"{head} FAILED {rc.detail}".rstrip()
    text = f"{head} completed"
    if rc.clusters_before is not None and rc.clusters_after is not None:
        text += f", {rc.clusters_before} → {rc.clusters_after} clusters"
    if rc.started_at and rc.finished_at:
        text += f" in {duration((rc.finished_at - rc.started_at).total_seconds())}"
    return text


def snapshot_text(
    status: ServiceStatus,
    views: Sequence[ClusterView],
    now: datetime,
    *,
    top: int = 10,
    new_within: timedelta = timedelta(minutes=10),
    source: str = "",
) -> str:
    """The plain-text snapshot of `kura-stream tui --once`: status, top clusters, the tree.

    Args:
        status: The service status.
        views: Every cluster, base and meta.
        now: The current time (for relative times and new-cluster markers).
        top: How many base clusters to list.
        new_within: Clusters created this recently are marked new.
        source: Where the data came from (shown in the heading).

    Returns:
        The snapshot, lines ending with a newline.
    """
    total = total_count(views)
    heading = f"kura-stream  {now:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    lines = [heading + (f"  ({source})" if source else ""), ""]
    lines.append("Pipeline")
    lines.append("  " + totals_text(status))
    fields = pipeline_fields(status, now)
    if status.last_recompute_at is not None:  # scripts want the time itself, too
        at = f"{status.last_recompute_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
        fields = [(k, f"{v} ({at})" if k == "last recompute" else v) for k, v in fields]
    lines.append("  " + " · ".join(f"{k} {v}" for k, v in fields))
    lines.append("  " + recompute_text(None, now, running=status.recompute_running))
    lines.append("")
    base = sort_views(base_clusters(views), "size")
    lines.append(f"Top clusters ({min(top, len(base))} of {len(base)}, by size)")
    lines.append(f"  {'#':>3}  {'size':>7}  {'share':>6}  {'growth':>6}  name")
    for i, view in enumerate(base[:top], 1):
        mark = f"  [{NEW_MARKER}]" if is_new(view, now, new_within) else ""
        lines.append(
            f"  {i:>3}  {view.count:>7,}  {share(view.count, total):>6}  "
            f"{'+' + str(growth(view.history)):>6}  {display_name(view)}{mark}"
        )
    lines.append("")
    lines.append(f"Hierarchy ({total:,} conversations)")
    for row in tree_rows(views):
        prefix = "".join("    " if a else "║   " for a in row.ancestors_last)
        lines.append(f"{prefix}{'╚══ ' if row.last else '╠══ '}{tree_label(row.view, total)}")
    return "\n".join(lines) + "\n"
