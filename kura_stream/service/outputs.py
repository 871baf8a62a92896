"""What the service publishes, as the use cases see it: typed records, no transport."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kura_stream.types import (
    Assignment,
    ClusterEvent,
    Command,
    DeadLetter,
    EmbeddedConversation,
)


class Outputs(Protocol):
    """The service's output topics. Each call returns once the broker has acknowledged all."""

    async def embedded(self, items: Sequence[EmbeddedConversation]) -> None:
        """Summarised and embedded conversations, for the assigner."""
        ...

    async def assignments(self, items: Sequence[Assignment]) -> None:
        """Where conversations were placed."""
        ...

    async def cluster_events(self, events: Sequence[ClusterEvent]) -> None:
        """What happened to clusters and to the map."""
        ...

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Records that can never be processed, with their reasons."""
        ...

    async def command(self, command: Command) -> None:
        """A command for the commands consumer (a recompute that survives a crash)."""
        ...
