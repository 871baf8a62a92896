"""The hierarchy as a Tree with counts and shares; Enter on a node sends ClusterChosen."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from kura_stream.service.api_models import ClusterView
from tui.format import TreeRow, display_name, share, total_count, tree_rows
from tui.widgets.messages import ClusterChosen

logger = logging.getLogger(__name__)


def _label(view: ClusterView, total: int) -> Text:
    # Count first: on a narrow terminal a long name is cut, the numbers stay readable.
    return Text.assemble(
        (f"{view.count:,}", "bold"),
        " ",
        (display_name(view), "" if view.visible else "dim italic"),
        (f" {share(view.count, total)}", "dim"),
    )


class ClusterTree(Tree[str]):
    """Clusters of every level under a root, largest first; labels update in place.

    The tree is rebuilt only when its shape changes (clusters born, merged, re-parented,
    hidden or shown); expanded nodes and the cursor are kept across rebuilds.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Clusters", id=id)
        self.nodes_by_id: dict[str, TreeNode[str]] = {}
        self._shape: tuple[tuple[str, str | None, bool], ...] = ()
        self.auto_expand = False

    def show(self, views: Sequence[ClusterView]) -> None:
        """Show new data (the app calls this after each poll)."""
        rows = tree_rows(views)
        total = total_count(views)
        self.root.set_label(Text.assemble(("Clusters", "bold"), f" {total:,} conversations"))
        shape = tuple((r.view.id, r.view.parent_id, r.view.visible) for r in rows)
        if shape != self._shape:
            self._rebuild(rows, total, first=not self._shape)
            self._shape = shape
            return
        for row in rows:
            self.nodes_by_id[row.view.id].set_label(_label(row.view, total))

    def _rebuild(self, rows: Sequence[TreeRow], total: int, *, first: bool) -> None:
        expanded = {cid for cid, node in self.nodes_by_id.items() if node.is_expanded}
        cursor = self.cursor_node.data if self.cursor_node is not None else None
        self.root.remove_children()
        self.nodes_by_id = {}
        parents: list[TreeNode[str]] = [self.root]
        for i, row in enumerate(rows):
            del parents[row.depth + 1 :]
            has_kids = i + 1 < len(rows) and rows[i + 1].depth > row.depth
            node = parents[row.depth].add(
                _label(row.view, total),
                data=row.view.id,
                expand=has_kids and ((first and row.depth == 0) or row.view.id in expanded),
                allow_expand=has_kids,
            )
            self.nodes_by_id[row.view.id] = node
            parents.append(node)
        self.root.expand()
        if cursor is not None and cursor in self.nodes_by_id:
            self.call_after_refresh(self.move_cursor, self.nodes_by_id[cursor])

    def select_cluster(self, cluster_id: str) -> None:
        """Put the cursor on a cluster's node, opening its ancestors."""
        node = self.nodes_by_id.get(cluster_id)
        if node is None:
            return
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.call_after_refresh(self.move_cursor, node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        """Enter on a node: tell the app which cluster."""
        event.stop()
        if event.node.data is not None:
            self.post_message(ClusterChosen(event.node.data))
