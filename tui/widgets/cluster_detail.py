"""The selected cluster: its name, counts, description and a few member summaries."""

from __future__ import annotations

import logging
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from kura_stream.service.api_models import ClusterDetail
from tui.format import compact_count, display_name, growth, relative_time, share

logger = logging.getLogger(__name__)

PROMPT = "Choose a cluster (Enter in the table or the tree, or click the map) to see it here."
MAX_SAMPLES = 5


def detail_text(detail: ClusterDetail, total: int, now: datetime) -> Text:
    """A cluster's detail as text: summaries only, never conversations; none for hidden ones.

    Args:
        detail: The cluster's detail from the read API.
        total: Conversations in all clusters, for its share.
        now: The current time.

    Returns:
        The text of the detail panel.
    """
    view = detail.cluster
    text = Text()
    text.append(display_name(view), style="bold" if view.visible else "dim italic")
    text.append("\n")
    facts = [
        f"{view.count:,} conversations",
        share(view.count, total),
        f"+{compact_count(growth(view.history))} recently",
        f"level {view.level}",
    ]
    if view.created_at is not None:
        facts.append(f"born {relative_time(view.created_at, now)}")
    if detail.children:
        facts.append(f"{len(detail.children)} subclusters")
    text.append(" · ".join(facts), style="dim")
    if not view.visible:
        text.append("\n\nToo few conversations to show its name or summaries.", style="italic")
        return text
    if view.description:
        text.append("\n\n")
        text.append(view.description)
    if detail.sample:
        text.append("\n\nSample summaries", style="bold underline")
        for summary in detail.sample[:MAX_SAMPLES]:
            text.append("\n• ")
            text.append(summary.summary)
    return text


class ClusterDetailPanel(Static):
    """Shows one cluster's detail; the app sets it after the user chooses a cluster."""

    def show(self, detail: ClusterDetail | None, total: int, now: datetime) -> None:
        """Show `detail`, or the prompt to choose a cluster."""
        self.update(
            Text(PROMPT, style="dim") if detail is None else detail_text(detail, total, now)
        )

    def show_error(self, message: str) -> None:
        """Say why the detail could not be fetched."""
        self.update(Text(message, style="red"))
