"""The pipeline panel (connection, throughput, lag, DLQ, recompute, health) and the view bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from kura_stream.service.api_models import RecomputeStatus, ServiceStatus
from tui.format import duration, pipeline_fields, recompute_text, relative_time, totals_text

_SEP = (" · ", "dim")


@dataclass(frozen=True)
class PipelineState:
    """What the pipeline panel shows.

    Attributes:
        now: The current time.
        status: The last status received, if any.
        connected: Whether the last poll succeeded.
        error: Why the last poll failed.
        recompute: The recompute this dashboard requested, if any.
        last_ok_at: When a poll last succeeded.
        poll_s: Seconds between polls.
    """

    now: datetime
    status: ServiceStatus | None = None
    connected: bool = False
    error: str = ""
    recompute: RecomputeStatus | None = None
    last_ok_at: datetime | None = None
    poll_s: float = 2.0


class PipelinePanel(Widget):
    """The service's health and pipeline numbers, two or three lines."""

    state: reactive[PipelineState | None] = reactive(None, layout=True)

    def watch_state(self, state: PipelineState | None) -> None:
        """Mark the panel while the service is away, for the stylesheet."""
        self.set_class(state is not None and not state.connected and bool(state.error), "-down")

    def render(self) -> Text:
        """The panel's text."""
        state = self.state
        if state is None:
            return Text("… connecting", style="yellow")
        first = Text()
        if state.connected:
            first.append("● live", style="bold green")
        elif state.last_ok_at is None and not state.error:
            first.append("… connecting", style="yellow")
        else:
            first.append("✕ disconnected", style="bold red")
            first.append(f": {state.error}" if state.error else "", style="red")
            first.append(f" (retrying every {duration(state.poll_s)}", style="dim")
            first.append(f", data from {relative_time(state.last_ok_at, state.now)})", style="dim")
        status = state.status
        if status is None:
            return first
        first.append("  ")
        for label, ok in (("store", status.store_ok), ("broker", status.broker_ok)):
            first.append(f"{label} ")
            first.append("ok" if ok else "DOWN", style="green" if ok else "bold red")
            first.append("  ")
        first.append(totals_text(status), style="bold")
        second = Text()
        for i, (label, value) in enumerate(pipeline_fields(status, state.now)[:4]):
            if i:
                second.append(*_SEP)
            second.append(f"{label} ", style="dim")
            warn = (label == "DLQ" and status.dlq > 0) or (label == "lag" and status.lag > 1000)
            second.append(value, style="bold yellow" if warn else "bold")
        lines = [first, second]
        rc_text = recompute_text(state.recompute, state.now, running=status.recompute_running)
        if state.recompute is None and not status.recompute_running:
            second.append(*_SEP)
            second.append(rc_text, style="dim")
        else:
            failed = state.recompute is not None and state.recompute.state == "failed"
            lines.append(Text(f"⟳ {rc_text}", style="bold red" if failed else "cyan"))
        if not state.connected:
            for line in lines[1:]:
                line.stylize("dim")
        return Text("\n").join(lines)


VIEWS: tuple[tuple[str, str, str], ...] = (
    ("1", "table", "Clusters"),
    ("2", "tree", "Hierarchy"),
    ("3", "map", "Map"),
)


class ViewBar(Widget):
    """One line naming the views of a small terminal, the shown one highlighted."""

    active: reactive[str] = reactive("table")

    def render(self) -> Text:
        """The bar's text."""
        text = Text()
        for key, view, label in VIEWS:
            style = "bold reverse" if view == self.active else ""
            text.append(f" {key} {label} ", style=style)
            text.append(" ")
        return text
