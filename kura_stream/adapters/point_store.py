"""The ClusterStore protocol over two point collections, written once for every Qdrant engine.

An engine adapter supplies a handful of primitives on one collection (write, fetch, remove,
count, scan, nearest); the protocol's twelve methods, validation and encoding live here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from kura_stream.adapters.stores import (
    StoreClosedError,
    arrival_in_json,
    decode_cluster,
    decode_conversation,
    decode_meta,
    encode_cluster,
    encode_conversation,
    in_input_order,
    member_block,
)
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint, Hit, Vector
from kura_stream.stages.member_blocks import MemberBlock

H = TypeVar("H")
"""An engine's handle on one collection (a collection name, a shard)."""

RawPoint = tuple[Mapping[str, Any], Any]
"""A stored point as an engine returns it: (payload, vector)."""

Encoded = list[tuple[str, list[float], dict[str, Any]]]
"""Points ready to write: (point id, unit vector, engine payload)."""

CLUSTER_FIELD = "cluster_id"


class ConversationJournal:
    """The chat ids written or deleted while it is open (see PointStore.watch_conversations).

    A recompute opens one before its snapshot: under the write lock it replays only these.
    """

    def __init__(self) -> None:
        """An empty journal."""
        self.touched: set[str] = set()

    def drain(self) -> list[str]:
        """The chat ids noted so far, emptying the journal."""
        touched, self.touched = self.touched, set()
        return sorted(touched)


class PointStore(ABC, Generic[H]):
    """Implements ClusterStore given an engine's primitives on its two collections."""

    _dim: int
    _closed: bool
    _conversations: H
    _clusters: H

    # -- the engine's primitives ---------------------------------------------------------

    @abstractmethod
    def _write(self, handle: H, encoded: Encoded) -> None:
        """Upsert encoded points durably."""

    @abstractmethod
    def _fetch(self, handle: H, keys: Sequence[str]) -> list[RawPoint]:
        """The stored points among keys (any order)."""

    @abstractmethod
    def _remove(self, handle: H, keys: Sequence[str]) -> None:
        """Delete points by key; unknown keys are ignored."""

    @abstractmethod
    def _count(self, handle: H, cluster_id: str | None) -> int:
        """Exact count, optionally of one cluster_id."""

    @abstractmethod
    def _scan(self, handle: H, batch_size: int) -> Iterator[list[RawPoint]]:
        """Every point, in batches."""

    @abstractmethod
    def _scan_cluster(self, handle: H, cluster_id: str, limit: int) -> list[RawPoint]:
        """Up to limit points whose cluster_id is cluster_id (limit >= 1)."""

    @abstractmethod
    def _nearest(
        self, handle: H, key: str, vector: Vector, limit: int, cluster_id: str | None
    ) -> list[Hit]:
        """Nearest points by cosine, best first; Hit.id is the payload's `key` field."""

    def _scan_members(self, handle: H, batch_size: int) -> Iterator[list[RawPoint]]:
        """Every point with at least the payload's MEMBER_FIELDS, in batches."""
        return self._scan(handle, batch_size)

    def _scan_payloads(self, handle: H, batch_size: int) -> Iterator[list[Mapping[str, Any]]]:
        """Every point's payload, in batches (engines that can leave the vectors unread)."""
        for batch in self._scan(handle, batch_size):
            yield [p for p, _ in batch]

    def _relabel(self, handle: H, moves: Mapping[str, str | None]) -> None:
        """Set the cluster_id of the stored points among moves' keys (others ignored), durably."""
        points = [decode_conversation(p, v) for p, v in self._fetch(handle, list(moves))]
        moved = [replace(p, cluster_id=moves[p.chat_id]) for p in points]
        if moved:
            self._write(handle, [encode_conversation(p, self._dim) for p in moved])

    # -- ClusterStore ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the cluster store is closed")

    @property
    def dim(self) -> int:
        """Vector length of both collections."""
        return self._dim

    def upsert_conversations(self, points: Sequence[ConversationPoint]) -> None:
        """Insert or replace conversations by chat_id; all are validated before any is written."""
        self._check_open()
        encoded = [encode_conversation(p, self._dim) for p in points]
        if encoded:
            self._note([p.chat_id for p in points])
            self._write(self._conversations, encoded)

    def get_conversations(self, chat_ids: Sequence[str]) -> list[ConversationPoint]:
        """The stored conversations among chat_ids (missing ids left out), in input order."""
        self._check_open()
        found = [decode_conversation(p, v) for p, v in self._fetch(self._conversations, chat_ids)]
        return in_input_order(chat_ids, {p.chat_id: p for p in found})

    def delete_conversations(self, chat_ids: Sequence[str]) -> None:
        """Delete conversations by chat_id; unknown ids are ignored."""
        self._check_open()
        self._note(chat_ids)
        self._remove(self._conversations, chat_ids)

    def count_conversations(self, cluster_id: str | None = None) -> int:
        """Exact number of conversations, all of them or those in one cluster."""
        self._check_open()
        return self._count(self._conversations, cluster_id)

    def iter_conversations(self, batch_size: int = 1000) -> Iterator[list[ConversationPoint]]:
        """Every stored conversation with its vector, in batches of at most batch_size."""
        self._check_open()
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        for batch in self._scan(self._conversations, batch_size):
            yield [decode_conversation(p, v) for p, v in batch]

    def iter_member_blocks(self, batch_size: int = 4096) -> Iterator[MemberBlock]:
        """Every stored conversation as blocks: ids, clusters, one vector array, arrival.

        The JSON payloads are not read (but for conversations written by a version that kept
        the arrival time only there).
        """
        self._check_open()
        for raw in self._scan_members(self._conversations, batch_size):
            block, missing = member_block(raw)
            if missing:  # written by an earlier version: the JSON holds what is missing
                keys = [block.chat_ids[row] for row in missing]
                full = {str(p["chat_id"]): p for p, _ in self._fetch(self._conversations, keys)}
                extra = 0
                for row, key in zip(missing, keys, strict=True):
                    block.arrived[row], count = arrival_in_json(full.get(key, {}))
                    extra += count
                block = block._replace(duplicates=block.duplicates + extra)
            yield block

    def set_cluster_ids(self, moves: Mapping[str, str | None]) -> None:
        """Move conversations (chat_id -> cluster_id) without rewriting their payloads.

        Not noted in any journal: the recompute that writes them is the journal's reader.
        Conversations no longer stored are skipped.
        """
        self._check_open()
        if moves:
            self._relabel(self._conversations, moves)

    def watch_conversations(self) -> ConversationJournal:
        """A journal of the chat ids written or deleted from now on (stop_watching ends it)."""
        journal = ConversationJournal()
        self._journals().append(journal)
        return journal

    def stop_watching(self, journal: ConversationJournal) -> None:
        """Stop noting writes in journal."""
        journals = self._journals()
        if journal in journals:
            journals.remove(journal)

    def _journals(self) -> list[ConversationJournal]:
        journals: list[ConversationJournal] | None = self.__dict__.get("_open_journals")
        if journals is None:
            journals = self.__dict__["_open_journals"] = []
        return journals

    def _note(self, chat_ids: Sequence[str]) -> None:
        for journal in self._journals():
            journal.touched.update(chat_ids)

    def conversations_in_cluster(self, cluster_id: str, limit: int) -> list[ConversationPoint]:
        """Up to limit conversations whose cluster_id is cluster_id."""
        self._check_open()
        if limit < 1:
            return []
        raw = self._scan_cluster(self._conversations, cluster_id, limit)
        return [decode_conversation(p, v) for p, v in raw]

    def search_conversations(
        self, vector: Vector, limit: int, cluster_id: str | None = None
    ) -> list[Hit]:
        """Nearest conversations by cosine similarity, best first, optionally in one cluster."""
        self._check_open()
        return self._nearest(self._conversations, "chat_id", vector, limit, cluster_id)

    def upsert_clusters(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters by cluster_id; all are validated before any is written."""
        self._check_open()
        encoded = [encode_cluster(p, self._dim) for p in points]
        if encoded:
            self._write(self._clusters, encoded)

    def get_clusters(self, cluster_ids: Sequence[str]) -> list[ClusterPoint]:
        """The stored clusters among cluster_ids (missing ids left out), in input order."""
        self._check_open()
        found = [decode_cluster(p, v) for p, v in self._fetch(self._clusters, cluster_ids)]
        return in_input_order(cluster_ids, {p.cluster_id: p for p in found})

    def list_clusters(self) -> list[ClusterPoint]:
        """Every stored cluster."""
        self._check_open()
        return [
            decode_cluster(p, v) for batch in self._scan(self._clusters, 1000) for p, v in batch
        ]

    def cluster_metas(self) -> dict[str, ClusterMeta]:
        """Every stored cluster's meta by id, the centroids left unread."""
        self._check_open()
        return {
            str(p["cluster_id"]): decode_meta(p)
            for batch in self._scan_payloads(self._clusters, 1000)
            for p in batch
        }

    def delete_clusters(self, cluster_ids: Sequence[str]) -> None:
        """Delete clusters by cluster_id; unknown ids are ignored."""
        self._check_open()
        self._remove(self._clusters, cluster_ids)

    def search_clusters(self, vector: Vector, limit: int) -> list[Hit]:
        """Nearest clusters by cosine similarity of their centroids, best first."""
        self._check_open()
        return self._nearest(self._clusters, CLUSTER_FIELD, vector, limit, None)
