"""How the assigner gets its state at start-up: a clean shutdown's save, or the store.

The stored conversations are the truth; reading all of them back takes most of a restart
over a large store (a minute for a million). A service that stops cleanly saves its state
(SavedState, beside an embedded store); the next start takes it if it still fits the store
and the settings, and otherwise rebuilds from the store as after a crash.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from kura_stream.protocols import ClusterStore
from kura_stream.records import ConversationPoint, Vector
from kura_stream.service.recompute_snapshot import MemberBlock, member_blocks
from kura_stream.stages.assign import AssignParams, ClusterState


class SavedState(Protocol):
    """Where a clean shutdown leaves the assigner's state for the next start."""

    def save(self, state: ClusterState, duplicates: int, fingerprint: Mapping[str, object]) -> None:
        """Keep the state and the store's duplicates count, for fingerprint."""
        ...

    def take(self, fingerprint: Mapping[str, object]) -> tuple[ClusterState, int] | None:
        """What was saved for fingerprint, if anything; it is never taken twice."""
        ...


def fingerprint(store: ClusterStore, params: AssignParams) -> dict[str, object]:
    """What a saved state must agree with: the vectors, the thresholds, the stored count."""
    return {
        "dim": store.dim,
        "params": asdict(params),
        "conversations": store.count_conversations(),
    }


def open_state(
    store: ClusterStore, params: AssignParams, saved: SavedState | None
) -> tuple[ClusterState, int]:
    """The state and the store's duplicates count: saved at a clean shutdown, or rebuilt."""
    if saved is not None:
        taken = saved.take(fingerprint(store, params))
        if taken is not None and taken[0].total == store.count_conversations():
            return taken
    members = StoredMembers(store)
    return ClusterState.rebuild(store.dim, members, params=params), members.duplicates


def duplicates_written(
    seen_again: Mapping[str, int], fresh: Collection[str], counted: Sequence[ConversationPoint]
) -> int:
    """Duplicates a batch added to the store's count: on its new records and those counted."""
    on_fresh = sum(seen_again.get(chat_id, 0) for chat_id in fresh)
    return on_fresh + sum(seen_again[p.chat_id] for p in counted)


class StoredMembers:
    """A store's conversations as (chat_id, cluster_id, vector, assigned at), re-readable.

    ClusterState.rebuild reads them twice (sums first, then each member's similarity to the
    final centroid), so a large store is streamed twice rather than held in memory. The time
    each was assigned tells the rebuild which arrived last: a store's order is its own.
    """

    def __init__(self, store: ClusterStore) -> None:
        """View the conversations of store."""
        self.store = store
        self.duplicates = 0
        """Copies of stored conversations received again, summed over the last pass."""

    def blocks(self) -> Iterator[MemberBlock]:
        """One pass over the store a block at a time, no payload parsed (rebuild prefers it)."""
        return member_blocks(self.store, tally=self)

    def __iter__(self) -> Iterator[tuple[str, str | None, Vector, float]]:
        """One pass over the store, in its order."""
        self.duplicates = 0
        for batch in self.store.iter_conversations(batch_size=2000):
            for point in batch:
                self.duplicates += int(point.payload.get("duplicates") or 0)
                yield point.chat_id, point.cluster_id, point.vector, assigned_at(point.payload)


def assigned_at(payload: Mapping[str, Any]) -> float:
    """When a stored conversation was assigned (seconds), or -inf where no time was kept."""
    try:
        return datetime.fromisoformat(str(payload["assigned_at"])).timestamp()
    except (KeyError, ValueError):
        return float("-inf")
