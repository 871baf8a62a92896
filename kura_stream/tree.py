"""The cluster hierarchy as a tree: plain text like Kura's visualise_clusters, or a rich Tree."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from rich.text import Text
from rich.tree import Tree

from kura_stream.privacy import is_shown
from kura_stream.types import Cluster

logger = logging.getLogger(__name__)

HIDDEN_LABEL = "(small cluster, name hidden)"


def _order(cluster: Cluster) -> tuple[int, str, str]:
    return (-cluster.count, cluster.name, cluster.id)


def walk(clusters: Sequence[Cluster]) -> Iterator[tuple[Cluster, int, bool]]:
    """Visit clusters depth-first from the roots, largest first at every level.

    A cluster whose parent is not among `clusters` counts as a root. Clusters caught in a
    parent cycle (which no root reaches) are visited afterwards as roots, so none is lost.

    Args:
        clusters: Clusters of any levels.

    Yields:
        (cluster, depth from its root, whether it is the last of its siblings).
    """
    by_id = {c.id: c for c in clusters}
    children: dict[str, list[Cluster]] = {}
    roots: list[Cluster] = []
    for cluster in by_id.values():
        if cluster.parent_id is not None and cluster.parent_id in by_id:
            children.setdefault(cluster.parent_id, []).append(cluster)
        else:
            roots.append(cluster)
    visited: set[str] = set()

    def visit(cluster: Cluster, depth: int, last: bool) -> Iterator[tuple[Cluster, int, bool]]:
        visited.add(cluster.id)
        yield cluster, depth, last
        kids = sorted((k for k in children.get(cluster.id, ()) if k.id not in visited), key=_order)
        for i, kid in enumerate(kids):
            yield from visit(kid, depth + 1, i == len(kids) - 1)

    ordered = sorted(roots, key=_order)
    for i, root in enumerate(ordered):
        yield from visit(root, 0, i == len(ordered) - 1)
    stranded = sorted((c for c in by_id.values() if c.id not in visited), key=_order)
    if stranded:
        logger.warning("%d clusters sit in a parent cycle; shown as roots", len(stranded))
    for cluster in stranded:
        if cluster.id not in visited:
            yield from visit(cluster, 0, True)


def _total(clusters: Sequence[Cluster]) -> int:
    ids = {c.id for c in clusters}
    return sum(c.count for c in clusters if c.parent_id is None or c.parent_id not in ids)


def _plural(n: int) -> str:
    return f"{n:,} conversation" + ("" if n == 1 else "s")


def _label(cluster: Cluster, min_size_shown: int, total: int) -> tuple[str, str]:
    name = cluster.name if is_shown(cluster, min_size_shown) else HIDDEN_LABEL
    pct = 100.0 * cluster.count / total if total else 0.0
    return name, f"({_plural(cluster.count)}, {pct:.1f}%)"


def _visible(
    clusters: Sequence[Cluster], min_size_shown: int
) -> Iterator[tuple[Cluster, int, bool, list[bool]]]:
    """walk() without the subtrees under a hidden cluster, with the 'last' flags of ancestors."""
    lasts: list[bool] = []
    hidden_depth: int | None = None
    for cluster, depth, last in walk(clusters):
        if hidden_depth is not None and depth > hidden_depth:
            continue  # children of a hidden cluster are smaller still: hidden as a block
        hidden_depth = None if is_shown(cluster, min_size_shown) else depth
        del lasts[depth:]
        lasts.append(last)
        yield cluster, depth, last, list(lasts[:-1])


def render_tree(clusters: Sequence[Cluster], min_size_shown: int) -> str:
    """The hierarchy as text with box-drawing characters, as Kura's visualise_clusters prints it.

    Each line shows a cluster's name, its conversation count and its share of all
    conversations (the sum over the top-level clusters). Children are sorted by count, largest
    first (then name, then id), so the output is deterministic. Clusters smaller than
    `min_size_shown` show no name, and the clusters under them are not listed.

    Args:
        clusters: Clusters of any levels, linked by parent_id.
        min_size_shown: Clusters with fewer conversations are not shown by name.

    Returns:
        The tree, one cluster per line, ending with a newline.
    """
    total = _total(clusters)
    lines = [f"Clusters ({_plural(total)})"]
    for cluster, _depth, last, ancestors_last in _visible(clusters, min_size_shown):
        prefix = "".join("    " if a else "║   " for a in ancestors_last)
        name, counts = _label(cluster, min_size_shown, total)
        lines.append(f"{prefix}{'╚══ ' if last else '╠══ '}{name} {counts}")
    return "\n".join(lines) + "\n"


def rich_tree(clusters: Sequence[Cluster], min_size_shown: int, *, title: str = "Clusters") -> Tree:
    """The same hierarchy as `render_tree`, as a rich Tree for the CLI.

    Names are plain Text (never parsed as markup), so a name holding "[...]" prints as is.

    Args:
        clusters: Clusters of any levels, linked by parent_id.
        min_size_shown: Clusters with fewer conversations are not shown by name.
        title: Label of the root node.

    Returns:
        A rich Tree ready for Console.print.
    """
    total = _total(clusters)
    root = Tree(Text.assemble((title, "bold"), f" ({_plural(total)})"))
    nodes: list[Tree] = [root]
    for cluster, depth, _last, _ in _visible(clusters, min_size_shown):
        name, counts = _label(cluster, min_size_shown, total)
        style = "bold" if is_shown(cluster, min_size_shown) else "dim italic"
        del nodes[depth + 1 :]
        nodes.append(nodes[depth].add(Text.assemble((name, style), " ", (counts, "dim"))))
    return root
