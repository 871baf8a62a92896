"""Tree view: Kura-style text tree, sorted, with small clusters unnamed; the rich variant."""

from __future__ import annotations

import random

from rich.console import Console

from kura_stream.tree import render_tree, rich_tree, walk
from kura_stream.types import Cluster


def hierarchy() -> list[Cluster]:
    return [
        Cluster(id="t2", name="Plan trips", count=40, level=2),
        Cluster(id="b6", name="Book hotels", count=36, parent_id="t2"),
        Cluster(id="m3", name="Secret meta", count=4, parent_id="t2", level=1),
        Cluster(id="b5", name="Secret child", count=4, parent_id="m3"),
        Cluster(id="t1", name="Write code", count=60, level=2),
        Cluster(id="m2", name="Write SQL", count=20, parent_id="t1", level=1),
        Cluster(id="b3", name="Tiny", count=3, parent_id="m2"),
        Cluster(id="b4", name="Join tables", count=17, parent_id="m2"),
        Cluster(id="m1", name="Debug Python", count=40, parent_id="t1", level=1),
        Cluster(id="b2", name="Fix [bold]typing[/]", count=10, parent_id="m1"),
        Cluster(id="b1", name="Fix imports", count=30, parent_id="m1"),
    ]


EXPECTED = """\
Clusters (100 conversations)
╠══ Write code (60 conversations, 60.0%)
║   ╠══ Debug Python (40 conversations, 40.0%)
║   ║   ╠══ Fix imports (30 conversations, 30.0%)
║   ║   ╚══ Fix [bold]typing[/] (10 conversations, 10.0%)
║   ╚══ Write SQL (20 conversations, 20.0%)
║       ╠══ Join tables (17 conversations, 17.0%)
║       ╚══ (small cluster, name hidden) (3 conversations, 3.0%)
╚══ Plan trips (40 conversations, 40.0%)
    ╠══ Book hotels (36 conversations, 36.0%)
    ╚══ (small cluster, name hidden) (4 conversations, 4.0%)
"""


def test_render_tree_exact() -> None:
    assert render_tree(hierarchy(), 5) == EXPECTED


def test_render_tree_is_deterministic_whatever_the_input_order() -> None:
    clusters = hierarchy()
    for seed in range(5):
        random.Random(seed).shuffle(clusters)
        assert render_tree(clusters, 5) == EXPECTED


def test_small_names_never_rendered() -> None:
    out = render_tree(hierarchy(), 5)
    assert "Secret" not in out
    assert "Tiny" not in out
    everything = render_tree(hierarchy(), 1)
    assert "Secret meta" in everything
    assert "Secret child" in everything
    assert "Tiny" in everything


def test_ties_broken_by_name_then_id() -> None:
    clusters = [
        Cluster(id="z", name="Beta", count=5),
        Cluster(id="y", name="Alpha", count=5),
        Cluster(id="x", name="Alpha", count=5),
    ]
    assert [c.id for c, _, _ in walk(clusters)] == ["x", "y", "z"]


def test_orphans_and_cycles_are_shown_as_roots() -> None:
    clusters = [
        Cluster(id="a", name="Orphan", count=5, parent_id="gone"),
        Cluster(id="b", name="Loop one", count=7, parent_id="c"),
        Cluster(id="c", name="Loop two", count=6, parent_id="b"),
    ]
    visited = [(c.id, depth) for c, depth, _ in walk(clusters)]
    assert sorted(v[0] for v in visited) == ["a", "b", "c"]
    assert visited[0] == ("a", 0)
    out = render_tree(clusters, 1)
    assert "Orphan" in out
    assert "Loop one" in out
    assert "Loop two" in out


def test_empty_and_singular() -> None:
    assert render_tree([], 5) == "Clusters (0 conversations)\n"
    out = render_tree([Cluster(id="a", name="One", count=1)], 1)
    assert out == "Clusters (1 conversation)\n╚══ One (1 conversation, 100.0%)\n"


def test_rich_tree_matches_and_does_not_parse_markup() -> None:
    console = Console(record=True, width=120, color_system=None)
    console.print(rich_tree(hierarchy(), 5))
    text = console.export_text()
    assert "Fix [bold]typing[/] (10 conversations, 10.0%)" in text
    assert "Clusters (100 conversations)" in text
    assert "Secret" not in text
    assert "Tiny" not in text
    lines = [line.strip("│├└─ ") for line in text.splitlines()]
    expected = [line.strip("║╠╚═ ") for line in EXPECTED.splitlines()]
    assert lines == expected
