"""The dashboard's pure formatting helpers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kura_stream.service.api_models import ClusterView, RecomputeStatus
from kura_stream.tree import HIDDEN_LABEL
from tests.fakes.read_api import NOW, FakeReadAPI
from tui import format as fmt


def view(cid: str, count: int, **kw: object) -> ClusterView:
    return ClusterView.model_validate({"id": cid, "name": cid.upper(), "count": count, **kw})


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1.0k"),
        (1234, "1.2k"),
        (12_345, "12.3k"),
        (99_949, "99.9k"),
        (99_950, "100k"),
        (123_456, "123k"),
        (999_499, "999k"),
        (999_500, "1.0M"),
        (1_234_567, "1.2M"),
        (2_500_000_000, "2.5G"),
        (-1500, "-1.5k"),
    ],
)
def test_compact_count(n: int, text: str) -> None:
    assert fmt.compact_count(n) == text


@pytest.mark.parametrize(
    ("part", "total", "text"),
    [(1, 8, "12.5%"), (0, 10, "0.0%"), (1, 10_000, "<0.1%"), (5, 0, "-"), (10, 10, "100.0%")],
)
def test_share(part: int, total: int, text: str) -> None:
    assert fmt.share(part, total) == text


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (timedelta(seconds=2), "just now"),
        (timedelta(seconds=42), "42s ago"),
        (timedelta(minutes=5, seconds=59), "5m ago"),
        (timedelta(hours=3), "3h ago"),
        (timedelta(days=2, hours=5), "2d ago"),
        (timedelta(seconds=-30), "just now"),  # clocks disagree: never "-30s ago"
    ],
)
def test_relative_time(ago: timedelta, text: str) -> None:
    assert fmt.relative_time(NOW - ago, NOW) == text


def test_relative_time_never_and_duration() -> None:
    assert fmt.relative_time(None, NOW) == "never"
    assert [fmt.duration(s) for s in (0, 12, 185, 7440)] == ["0s", "12s", "3m05s", "2h04m"]


def test_sparkline_scales_from_zero_to_max() -> None:
    assert fmt.sparkline([0, 1, 2, 4, 8], 10) == "▁▂▃▅█"
    assert fmt.sparkline([0, 0, 0], 5) == "▁▁▁"
    assert fmt.sparkline([], 5) == ""
    assert fmt.sparkline([1, 2], 0) == ""


def test_sparkline_folds_long_series_into_width() -> None:
    line = fmt.sparkline([1] * 10 + [9] * 10, 4)
    assert line == "▂▂██"  # any growth at all rises above the baseline


def test_increments_and_growth() -> None:
    history = [10, 12, 12, 11, 20]
    assert fmt.increments(history) == [2, 0, 0, 9]  # a shrink (recompute) counts as zero
    assert fmt.growth(history) == 10
    assert fmt.growth([5]) == 0


def test_names_of_hidden_clusters_are_never_shown() -> None:
    hidden = view("c", 3, name="", visible=False)
    assert fmt.display_name(hidden) == HIDDEN_LABEL
    assert fmt.display_name(view("c", 9, name="")) == "(unnamed)"
    assert fmt.truncate("Debug Python", 8) == "Debug P…"
    assert fmt.truncate("ab", 8) == "ab"


def test_new_within_window() -> None:
    assert fmt.is_new(
        view("a", 5, created_at=NOW - timedelta(minutes=9)), NOW, timedelta(minutes=10)
    )
    assert not fmt.is_new(
        view("a", 5, created_at=NOW - timedelta(hours=1)), NOW, timedelta(minutes=10)
    )
    assert not fmt.is_new(view("a", 5), NOW, timedelta(minutes=10))


def test_filter_matches_name_or_description_but_not_hidden_text() -> None:
    views = [
        view("a", 10, name="Debug Python", description="imports"),
        view("b", 10, name="Write SQL", description="python drivers"),
        view("c", 2, name="", description="", visible=False),
    ]
    assert [v.id for v in fmt.filter_views(views, "PYTHON")] == ["a", "b"]
    assert [v.id for v in fmt.filter_views(views, "small cluster")] == ["c"]
    assert len(fmt.filter_views(views, "  ")) == 3


def test_sort_orders() -> None:
    views = [
        view("a", 10, name="Zeta", history=(1, 9), created_at=NOW - timedelta(days=1)),
        view("b", 30, name="alpha", history=(29, 30), created_at=NOW),
        view("c", 20, name="Mid", history=(0, 20)),
    ]

    def ids(key: fmt.SortKey, reverse: bool = False) -> list[str]:
        return [v.id for v in fmt.sort_views(views, key, reverse=reverse)]

    assert ids("size") == ["b", "c", "a"]
    assert ids("size", reverse=True) == ["a", "c", "b"]
    assert ids("growth") == ["c", "a", "b"]
    assert ids("name") == ["b", "c", "a"]
    assert ids("newest") == ["b", "a", "c"]


async def test_tree_rows_follow_the_hierarchy_and_prune_under_hidden() -> None:
    fake = FakeReadAPI.seeded()
    fake.add_cluster("m-small", "Small topic", count=0, level=1)
    fake.add_cluster("c-small", "Below floor", count=2, parent_id="m-small")
    rows = fmt.tree_rows(await fake.clusters())
    assert [(r.view.id, r.depth) for r in rows[:4]] == [
        ("m-code", 0),
        ("c-py", 1),
        ("c-sql", 1),
        ("c-rx", 1),
    ]
    ids = [r.view.id for r in rows]
    assert "m-small" in ids
    assert "c-small" not in ids
    assert rows[-1].last
    assert rows[-1].view.id == "m-small"


def test_map_points_fill_the_grid_and_size_by_count() -> None:
    views = [
        view("big", 100, x=0.0, y=0.0),
        view("mid", 25, x=10.0, y=5.0),
        view("small", 1, x=5.0, y=10.0),
        view("meta", 126, level=1, x=50.0, y=50.0),
    ]
    points = {p.cluster_id: p for p in fmt.map_points(views, 21, 11)}
    assert set(points) == {"big", "mid", "small"}  # meta clusters are not points
    assert (points["big"].col, points["big"].row) == (0, 10)  # y grows upwards
    assert (points["mid"].col, points["mid"].row) == (20, 5)
    assert (points["small"].col, points["small"].row) == (10, 0)
    assert [points[k].glyph for k in ("big", "mid", "small")] == ["●", "•", "·"]
    assert fmt.map_points(views, 0, 5) == []


def test_map_points_draw_large_last_and_center_a_single_point() -> None:
    views = [view("a", 5, x=1.0, y=1.0), view("b", 50, x=1.0, y=1.0)]
    points = fmt.map_points(views, 9, 5)
    assert [p.cluster_id for p in points] == ["a", "b"]  # the large one wins the cell
    assert {(p.col, p.row) for p in points} == {(4, 2)}
    near = fmt.nearest_point(points, 0, 0)
    assert near is not None
    assert near.cluster_id == "b"


def test_recompute_text() -> None:
    rc = RecomputeStatus(request_id="rc-1", state="queued")
    assert fmt.recompute_text(None, NOW) == "recompute: idle"
    assert fmt.recompute_text(None, NOW, running=True) == "recompute: running"
    assert fmt.recompute_text(rc, NOW) == "recompute rc-1: queued"
    running = rc.model_copy(update={"state": "running", "started_at": NOW - timedelta(seconds=12)})
    assert fmt.recompute_text(running, NOW) == "recompute rc-1: running 12s"
    done = running.model_copy(
        update={"state": "completed", "finished_at": NOW, "clusters_before": 8, "clusters_after": 9}
    )
    assert fmt.recompute_text(done, NOW) == "recompute rc-1: completed, 8 → 9 clusters in 12s"
    failed = rc.model_copy(update={"state": "failed", "detail": "store down"})
    assert fmt.recompute_text(failed, NOW) == "recompute rc-1: FAILED store down"


async def test_snapshot_text() -> None:
    fake = FakeReadAPI.seeded()
    fake.add_cluster("c-new", "Plan trips to Japan", count=40, parent_id="m-learn", x=1, y=1)
    text = fmt.snapshot_text(await fake.status(), await fake.clusters(), NOW, top=3)
    lines = text.splitlines()
    assert lines[0].startswith("kura-stream  2025-03-14 09:30:00 UTC")
    assert "6.4k conversations · 9 clusters · 310 outliers" in text
    assert (
        "throughput 4.2/s · lag 12 · DLQ 3 · last recompute 7m ago (2025-03-14 09:23:00 UTC)"
        in text
    )
    top = lines[lines.index("Top clusters (3 of 9, by size)") + 2 :][:3]
    assert top[0].split() == ["1", "1,840", "30.2%", "+96", "Debug", "Python", "import", "errors"]
    assert "Plan trips" not in "\n".join(top)
    assert "Hierarchy (6,098 conversations)" in text
    assert "╠══ Help with programming (3,212, 52.7%)" in text
    assert "║   ╠══ Debug Python import errors (1,840, 30.2%)" in text
    assert "    ╠══ Plan trips to Japan (40, 0.7%)" in text
    assert f"    ╚══ {HIDDEN_LABEL} (3, <0.1%)" in text
    assert "Rare niche topic" not in text
    assert (
        fmt.snapshot_text(await fake.status(), await fake.clusters(), NOW, top=20).count("[new]")
        == 1
    )
