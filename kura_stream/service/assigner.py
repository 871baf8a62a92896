"""The assign consumer's logic: place embedded conversations, store them, report what changed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kura_stream.privacy import is_shown
from kura_stream.protocols import ClusterStore
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint
from kura_stream.service.assigner_resume import (
    SavedState,
    StoredMembers,
    duplicates_written,
    fingerprint,
    open_state,
)
from kura_stream.service.assigner_resume import assigned_at as _assigned_at
from kura_stream.stages.assign import AssignParams, ClusterState, assign, rehome_outliers
from kura_stream.types import Assignment, ClusterEvent, ClusterEventKind, EmbeddedConversation

logger = logging.getLogger(__name__)


@dataclass
class AssignBatch:
    """What one batch did.

    Attributes:
        assignments: Final placement of every conversation touched: the stored placement of
            replayed records, then newcomers, then re-homed outliers.
        events: Cluster events to publish (created, grown).
        duplicates: Conversations skipped because their chat_id was already stored with the
            same content (or came twice in the batch).
        conflicts: (index in the batch, reason) of each chat_id sent again with other
            content: dead letters, never silently dropped or replacing the first.
        replayed: Records of a redelivered batch that were stored before a crash: their
            outputs are published again, as the crash may have lost them.
    """

    assignments: list[Assignment] = field(default_factory=list)
    events: list[ClusterEvent] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    replayed: int = 0


@dataclass
class _Triage:
    """A batch sorted by what each record is to the store."""

    fresh: list[tuple[EmbeddedConversation, str | None]] = field(default_factory=list)
    replays: list[ConversationPoint] = field(default_factory=list)
    seen_again: dict[str, int] = field(default_factory=dict)
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    stored: dict[str, ConversationPoint] = field(default_factory=dict)
    last_seen: dict[str, str] = field(default_factory=dict)


def conversation_payload(
    item: EmbeddedConversation, assigned_at: datetime, *, source: str | None = None
) -> dict[str, Any]:
    """What is stored beside a conversation's vector: its summary, times and provenance.

    `source` (topic/partition/offset of the embedded record) tells a redelivery of the same
    record, whose outputs must be published again, from the same chat_id sent again;
    `content_hash` tells a resent copy from a conflicting version.
    """
    return {
        "summary": item.summary.model_dump(mode="json"),
        "embedder": item.embedder,
        "created_at": item.created_at.isoformat(),
        "received_at": item.received_at.isoformat(),
        "assigned_at": assigned_at.isoformat(),
        "source": source,
        "content_hash": item.content_hash,
        # Scrubbed and bounded at ingest: what an export shows in Kura's web UI.
        "messages": [m.model_dump(mode="json") for m in item.messages],
        "messages_truncated": item.messages_truncated,
    }


def _stored_hash(point: ConversationPoint) -> str | None:
    value = point.payload.get("content_hash")
    return str(value) if value else None


def _same_content(a: str | None, b: str | None) -> bool:
    """Whether two content hashes agree (a record from before hashes agrees with any)."""
    return a is None or b is None or a == b


class Assigner:
    """Incremental clustering over a ClusterStore, idempotent by chat_id.

    The stored conversations are the truth: the in-memory state is rebuilt from them at
    start-up (unless a clean shutdown saved it), so a crash between writes loses nothing and
    counts nothing twice. Conversations are written before clusters, and a batch is
    acknowledged only after both writes return.
    """

    def __init__(
        self,
        store: ClusterStore,
        params: AssignParams,
        *,
        min_size_shown: int,
        saved: SavedState | None = None,
    ) -> None:
        """Open over a store: the state saved at a clean shutdown, or rebuilt from the store."""
        self.store = store
        self.params = params
        self.min_size_shown = min_size_shown
        self.saved = saved
        # No re-homing here: a restart must continue the stream as if it had not stopped.
        self.state, self.duplicates_stored = open_state(store, params, saved)
        """Duplicates recorded in the store (the counter survives restarts), kept up to date."""
        self.meta: dict[str, ClusterMeta] = {c.cluster_id: c.meta for c in store.list_clusters()}
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

    def close(self) -> None:
        """Save the state for the next start (where saved was given); the store stays open."""
        if self.saved is not None:
            fits = fingerprint(self.store, self.params)
            self.saved.save(self.state, self.duplicates_stored, fits)

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
        self.meta = {c.cluster_id: c.meta for c in self.store.list_clusters()}
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

    def process(
        self,
        items: Sequence[EmbeddedConversation],
        sources: Sequence[str | None] | None = None,
    ) -> AssignBatch:
        """Assign a batch, write it durably, and return assignments, events and conflicts.

        The rule for a chat_id met again: the same record redelivered after a crash (same
        source) has its stored placement published again; the same content sent again is a
        duplicate, counted in the store; other content is a conflicting duplicate, returned
        in `conflicts` for the dead-letter topic. The first version stays.

        Args:
            items: The batch, in topic order.
            sources: topic/partition/offset of each item (None: a redelivery cannot be told
                apart from a resend, and stored records are not published again).
        """
        try:
            batch = self._process(items, sources or [None] * len(items))
        except Exception:
            # The state may hold placements the store never got: the store is the truth.
            self.state = ClusterState.rebuild(
                self.store.dim, StoredMembers(self.store), params=self.params
            )
            self.meta = {c.cluster_id: c.meta for c in self.store.list_clusters()}
            raise
        self.pending_events = []
        return batch

    def _process(
        self, items: Sequence[EmbeddedConversation], sources: Sequence[str | None]
    ) -> AssignBatch:
        batch = AssignBatch(events=list(self.pending_events))
        triage = self._triage(items, sources)
        batch.conflicts = triage.conflicts
        batch.duplicates = sum(triage.seen_again.values())
        if triage.replays:
            self._replay(triage.replays, batch)
        counted = self._count_duplicates(triage)
        if triage.fresh or counted:
            self._place(triage.fresh, counted, triage.seen_again, batch)
        return batch

    def _triage(
        self, items: Sequence[EmbeddedConversation], sources: Sequence[str | None]
    ) -> _Triage:
        triage = _Triage()
        wanted = list(dict.fromkeys(item.chat_id for item in items))
        triage.stored = {p.chat_id: p for p in self.store.get_conversations(wanted)}
        first: dict[str, EmbeddedConversation] = {}
        for index, (item, source) in enumerate(zip(items, sources, strict=True)):
            known = triage.stored.get(item.chat_id)
            if known is not None and source is not None and known.payload.get("source") == source:
                triage.replays.append(known)
                continue
            earlier = first.get(item.chat_id)
            if known is None and earlier is None:
                first[item.chat_id] = item
                triage.fresh.append((item, source))
                continue
            theirs = _stored_hash(known) if known is not None else None
            if earlier is not None:
                theirs = earlier.content_hash
            if _same_content(theirs, item.content_hash):
                triage.seen_again[item.chat_id] = triage.seen_again.get(item.chat_id, 0) + 1
                if known is not None and source is not None:
                    triage.last_seen[item.chat_id] = source
            else:
                reason = (
                    f"conflicting duplicate: chat_id {item.chat_id!r} was received before with "
                    "other content; the first version is kept"
                )
                triage.conflicts.append((index, reason))
        return triage

    def _replay(self, points: Sequence[ConversationPoint], batch: AssignBatch) -> None:
        """The stored placement of records stored before a crash, and their clusters' events."""
        for point in points:
            similarity = 0.0
            if point.cluster_id in self.state.ids:
                centroid = self.state.centroids[self.state.index_of(point.cluster_id)]
                similarity = float(np.dot(centroid, np.asarray(point.vector, dtype=np.float32)))
            at = (
                datetime.fromtimestamp(_assigned_at(point.payload), UTC)
                if ("assigned_at" in point.payload)
                else datetime.now(UTC)
            )
            batch.assignments.append(
                Assignment(
                    chat_id=point.chat_id,
                    cluster_id=point.cluster_id,
                    similarity=similarity,
                    at=at,
                )
            )
        touched = [c for c in dict.fromkeys(p.cluster_id for p in points) if c in self.state.ids]
        for cluster_id in touched:
            count = int(self.state.counts[self.state.index_of(cluster_id)])
            batch.events.append(
                ClusterEvent(kind=ClusterEventKind.GROWN, cluster_id=cluster_id, count=count)
            )
        batch.replayed = len(points)
        logger.info("published again the outputs of %d records stored before a crash", len(points))

    def _count_duplicates(self, triage: _Triage) -> list[ConversationPoint]:
        """Stored conversations met again, with the count kept in the store (once per record)."""
        counted: list[ConversationPoint] = []
        for chat_id, n in triage.seen_again.items():
            known = triage.stored.get(chat_id)
            if known is None:
                continue
            source = triage.last_seen.get(chat_id)
            if source is not None and known.payload.get("last_seen_source") == source:
                continue  # this batch was counted before a crash
            payload = dict(known.payload)
            payload["duplicates"] = int(payload.get("duplicates") or 0) + n
            payload["last_seen_source"] = source
            counted.append(
                ConversationPoint(
                    chat_id=chat_id,
                    vector=known.vector,
                    cluster_id=known.cluster_id,
                    payload=payload,
                )
            )
        return counted

    def _place(
        self,
        fresh: Sequence[tuple[EmbeddedConversation, str | None]],
        counted: Sequence[ConversationPoint],
        seen_again: Mapping[str, int],
        batch: AssignBatch,
    ) -> None:
        placed: dict[str, Assignment] = {}
        born: list[str] = []
        vectors = np.asarray([item.vector for item, _ in fresh], dtype=np.float32)
        for (item, _), vector in zip(fresh, vectors, strict=True):
            self.state, outcome = assign(self.state, item.chat_id, vector, params=self.params)
            for assignment in outcome.assignments:
                placed[assignment.chat_id] = assignment
            if outcome.born:
                born.append(outcome.born)

        now = datetime.now(UTC)
        new_points = []
        for (item, source), vector in zip(fresh, vectors, strict=True):
            payload = conversation_payload(item, now, source=source)
            payload["duplicates"] = seen_again.get(item.chat_id, 0)
            new_points.append(
                ConversationPoint(
                    chat_id=item.chat_id,
                    vector=vector,
                    cluster_id=placed[item.chat_id].cluster_id,
                    payload=payload,
                )
            )
        fresh_ids = {item.chat_id for item, _ in fresh}
        rehomed_ids = [chat_id for chat_id in placed if chat_id not in fresh_ids]
        moved = self._moved(placed, rehomed_ids)
        self.store.upsert_conversations([*new_points, *moved, *counted])
        self.duplicates_stored += duplicates_written(seen_again, fresh_ids, counted)
        batch.events += self._sync_cluster_records(self._touched(placed), born=set(born))
        batch.assignments += [placed[i.chat_id] for i, _ in fresh]
        batch.assignments += [placed[c] for c in rehomed_ids]

    def _sync_cluster_records(
        self, cluster_ids: Sequence[str], *, born: set[str] | None = None
    ) -> list[ClusterEvent]:
        """Write the touched clusters' centroid and count; events for births and growth."""
        born = born or set()
        events: list[ClusterEvent] = []
        points: list[ClusterPoint] = []
        # Names and map positions are written by other consumers: start from what is stored.
        for stored in self.store.get_clusters(list(cluster_ids)):
            self.meta[stored.cluster_id] = stored.meta
        for cluster_id in cluster_ids:
            row = self.state.index_of(cluster_id)
            count = int(self.state.counts[row])
            before = self.meta.get(cluster_id) or ClusterMeta(created_at=datetime.now(UTC))
            meta = before.model_copy(update={"count": count})
            kind = None
            if cluster_id in born:
                kind = ClusterEventKind.CREATED
            elif count >= 2 * meta.announced_count and is_shown(
                meta.cluster(cluster_id), self.min_size_shown
            ):
                kind = ClusterEventKind.GROWN
            if kind is not None:
                events.append(ClusterEvent(kind=kind, cluster_id=cluster_id, count=count))
                meta = meta.model_copy(update={"announced_count": count})
            self.meta[cluster_id] = meta
            points.append(ClusterPoint(cluster_id, self.state.centroids[row], meta))
        if points:
            self.store.upsert_clusters(points)
        return events
