"""The assign consumer's logic: place embedded conversations, store them, report what changed."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kura_stream.protocols import ClusterStore
from kura_stream.records import ClusterPoint, ConversationPoint, Vector
from kura_stream.stages.assign import AssignParams, ClusterState, assign, rehome_outliers
from kura_stream.types import Assignment, ClusterEvent, ClusterEventKind, EmbeddedConversation

logger = logging.getLogger(__name__)


@dataclass
class AssignBatch:
    """What one batch did.

    Attributes:
        assignments: Final placement of every conversation touched, newcomers first.
        events: Cluster events to publish (created, grown).
        duplicates: Conversations skipped because their chat_id was already stored.
    """

    assignments: list[Assignment] = field(default_factory=list)
    events: list[ClusterEvent] = field(default_factory=list)
    duplicates: int = 0


def conversation_payload(item: EmbeddedConversation, assigned_at: datetime) -> dict[str, Any]:
    """What is stored beside a conversation's vector: its summary and times."""
    return {
        "summary": item.summary.model_dump(mode="json"),
        "embedder": item.embedder,
        "created_at": item.created_at.isoformat(),
        "received_at": item.received_at.isoformat(),
        "assigned_at": assigned_at.isoformat(),
        # Scrubbed and bounded at ingest: what an export shows in Kura's web UI.
        "messages": [m.model_dump(mode="json") for m in item.messages],
        "messages_truncated": item.messages_truncated,
    }


class StoredMembers:
    """A store's conversations as (chat_id, cluster_id, vector, assigned at), re-readable.

    ClusterState.rebuild reads them twice (sums first, then each member's similarity to the
    final centroid), so a large store is streamed twice rather than held in memory. The time
    each was assigned tells the rebuild which arrived last: a store's order is its own.
    """

    def __init__(self, store: ClusterStore) -> None:
        """View the conversations of store."""
        self.store = store

    def __iter__(self) -> Iterator[tuple[str, str | None, Vector, float]]:
        """One pass over the store, in its order."""
        for batch in self.store.iter_conversations(batch_size=2000):
            for point in batch:
                yield point.chat_id, point.cluster_id, point.vector, _assigned_at(point.payload)


def _assigned_at(payload: Mapping[str, Any]) -> float:
    """When a stored conversation was assigned (seconds), or -inf where no time was kept."""
    try:
        return datetime.fromisoformat(str(payload["assigned_at"])).timestamp()
    except (KeyError, ValueError):
        return float("-inf")


class Assigner:
    """Incremental clustering over a ClusterStore, idempotent by chat_id.

    The stored conversations are the truth: the in-memory state is rebuilt from them at
    start-up, so a crash between writes loses nothing and counts nothing twice. Conversations
    are written before clusters, and a batch is acknowledged only after both writes return.
    """

    def __init__(
        self,
        store: ClusterStore,
        params: AssignParams,
        *,
        min_size_shown: int,
    ) -> None:
        """Open over a store, rebuilding the state from what it holds."""
        self.store = store
        self.params = params
        self.min_size_shown = min_size_shown
        # No re-homing here: a restart must continue the stream as if it had not stopped.
        self.state = ClusterState.rebuild(store.dim, StoredMembers(store), params=params)
        self.meta: dict[str, dict[str, Any]] = {
            c.cluster_id: dict(c.payload) for c in store.list_clusters()
        }
        # A crash between writing a batch's conversations and its clusters leaves clusters
        # with members but no record: recreate them, and announce them as created.
        unrecorded = {cid for cid in self.state.ids if cid not in self.meta}
        self.pending_events: list[ClusterEvent] = self._sync_cluster_records(
            self.state.ids, born=unrecorded
        )
        logger.info(
            "assigner ready: %d conversations, %d clusters, %d outliers",
            self.state.total,
            len(self.state.ids),
            self.state.outliers_total,
        )

    def reload(self) -> AssignBatch:
        """Rebuild the state from the store (after a recompute rewrote it), re-homing outliers.

        Outliers that meet a cluster's join threshold after the rebuild join it; they are
        written to the store here.

        Returns:
            Their assignments and the events of the clusters they grew, to publish.
        """
        self.state = ClusterState.rebuild(
            self.store.dim, StoredMembers(self.store), params=self.params
        )
        self.meta = {c.cluster_id: dict(c.payload) for c in self.store.list_clusters()}
        self.state, rehomed = rehome_outliers(self.state, params=self.params)
        batch = AssignBatch(assignments=rehomed)
        if rehomed:
            placed = {a.chat_id: a for a in rehomed}
            self.store.upsert_conversations(self._moved(placed, list(placed)))
            batch.events = self._sync_cluster_records(self._touched(placed))
            logger.info("%d outliers joined clusters after a rebuild", len(rehomed))
        return batch

    def _moved(
        self, placed: Mapping[str, Assignment], chat_ids: Sequence[str]
    ) -> list[ConversationPoint]:
        """Stored conversations that changed cluster, with their new cluster."""
        return [
            ConversationPoint(
                chat_id=p.chat_id,
                vector=p.vector,
                cluster_id=placed[p.chat_id].cluster_id,
                payload=p.payload,
            )
            for p in self.store.get_conversations(list(chat_ids))
        ]

    @staticmethod
    def _touched(placed: Mapping[str, Assignment]) -> list[str]:
        return list(dict.fromkeys(a.cluster_id for a in placed.values() if a.cluster_id))

    def process(self, items: Sequence[EmbeddedConversation]) -> AssignBatch:
        """Assign a batch, write it durably, and return assignments and events."""
        batch = AssignBatch(events=self.pending_events)
        self.pending_events = []
        latest: dict[str, EmbeddedConversation] = {}
        for item in items:
            latest.pop(item.chat_id, None)
            latest[item.chat_id] = item
        batch.duplicates = len(items) - len(latest)
        stored = {p.chat_id for p in self.store.get_conversations(list(latest))}
        batch.duplicates += len(stored)
        fresh = [item for chat_id, item in latest.items() if chat_id not in stored]
        if not fresh:
            return batch

        placed: dict[str, Assignment] = {}
        born: list[str] = []
        for item in fresh:
            vector = np.asarray(item.vector, dtype=np.float32)
            self.state, outcome = assign(self.state, item.chat_id, vector, params=self.params)
            for assignment in outcome.assignments:
                placed[assignment.chat_id] = assignment
            if outcome.born:
                born.append(outcome.born)

        now = datetime.now(UTC)
        new_points = [
            ConversationPoint(
                chat_id=item.chat_id,
                vector=np.asarray(item.vector, dtype=np.float32),
                cluster_id=placed[item.chat_id].cluster_id,
                payload=conversation_payload(item, now),
            )
            for item in fresh
        ]
        fresh_ids = {item.chat_id for item in fresh}
        rehomed_ids = [chat_id for chat_id in placed if chat_id not in fresh_ids]
        moved = self._moved(placed, rehomed_ids)
        self.store.upsert_conversations([*new_points, *moved])
        batch.events += self._sync_cluster_records(self._touched(placed), born=set(born))
        batch.assignments = [placed[i.chat_id] for i in fresh] + [placed[c] for c in rehomed_ids]
        return batch

    def _sync_cluster_records(
        self, cluster_ids: Sequence[str], *, born: set[str] | None = None
    ) -> list[ClusterEvent]:
        """Write the touched clusters' centroid and count; events for births and growth."""
        born = born or set()
        events: list[ClusterEvent] = []
        points: list[ClusterPoint] = []
        # Names and map positions are written by other consumers: start from what is stored.
        for stored in self.store.get_clusters(list(cluster_ids)):
            self.meta[stored.cluster_id] = dict(stored.payload)
        for cluster_id in cluster_ids:
            row = self.state.index_of(cluster_id)
            count = int(self.state.counts[row])
            meta = self.meta.setdefault(
                cluster_id,
                {"name": "", "description": "", "slug": "", "level": 0, "parent_id": None,
                 "x": 0.0, "y": 0.0, "named_count": 0, "announced_count": 0,
                 "created_at": datetime.now(UTC).isoformat()},
            )  # fmt: skip
            meta["count"] = count
            if cluster_id in born:
                events.append(
                    ClusterEvent(kind=ClusterEventKind.CREATED, cluster_id=cluster_id, count=count)
                )
                meta["announced_count"] = count
            elif count >= max(2 * int(meta.get("announced_count") or 0), self.min_size_shown):
                events.append(
                    ClusterEvent(kind=ClusterEventKind.GROWN, cluster_id=cluster_id, count=count)
                )
                meta["announced_count"] = count
            points.append(
                ClusterPoint(
                    cluster_id=cluster_id,
                    centroid=self.state.centroids[row],
                    payload=meta,
                )
            )
        if points:
            self.store.upsert_clusters(points)
        return events
