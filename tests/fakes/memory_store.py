"""MemoryClusterStore: an in-memory ClusterStore (dicts + numpy) that passes the contract suite."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kura_stream.adapters.stores import (
    StoreClosedError,
    check_vector,
    cluster_meta,
    json_payload,
    meta_payload,
)
from kura_stream.records import ClusterPoint, ConversationPoint, Hit, Vector


class MemoryClusterStore:
    """Everything in dicts; search is one matrix product. Behaves like the real stores.

    Vectors are stored unit-normalised, payloads as their JSON round trip and cluster meta
    through the same payload conversion as the Qdrant engines, so a test that passes here
    passes on them.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._closed = False
        # chat_id -> (unit vector, cluster_id, payload); insertion order is iteration order.
        self._conversations: dict[str, tuple[npt.NDArray[np.float32], str | None, Any]] = {}
        self._clusters: dict[str, tuple[npt.NDArray[np.float32], Any]] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the cluster store is closed")

    def _conversation(self, chat_id: str) -> ConversationPoint:
        vector, cluster_id, payload = self._conversations[chat_id]
        return ConversationPoint(chat_id, vector.copy(), cluster_id, copy.deepcopy(payload))

    def _cluster(self, cluster_id: str) -> ClusterPoint:
        vector, payload = self._clusters[cluster_id]
        return ClusterPoint(cluster_id, vector.copy(), cluster_meta(payload))

    def upsert_conversations(self, points: Sequence[ConversationPoint]) -> None:
        self._check_open()
        rows = [
            (
                p.chat_id,
                check_vector(p.vector, self._dim, f"conversation {p.chat_id!r}"),
                p.cluster_id,
                json_payload(p.payload, f"conversation {p.chat_id!r}"),
            )
            for p in points
        ]
        for chat_id, vector, cluster_id, payload in rows:
            self._conversations[chat_id] = (vector, cluster_id, payload)

    def get_conversations(self, chat_ids: Sequence[str]) -> list[ConversationPoint]:
        self._check_open()
        return [self._conversation(c) for c in chat_ids if c in self._conversations]

    def delete_conversations(self, chat_ids: Sequence[str]) -> None:
        self._check_open()
        for chat_id in chat_ids:
            self._conversations.pop(chat_id, None)

    def count_conversations(self, cluster_id: str | None = None) -> int:
        self._check_open()
        if cluster_id is None:
            return len(self._conversations)
        return sum(1 for _, cid, _ in self._conversations.values() if cid == cluster_id)

    def iter_conversations(self, batch_size: int = 1000) -> Iterator[list[ConversationPoint]]:
        self._check_open()
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        keys = list(self._conversations)
        for start in range(0, len(keys), batch_size):
            batch = [k for k in keys[start : start + batch_size] if k in self._conversations]
            yield [self._conversation(k) for k in batch]

    def conversations_in_cluster(self, cluster_id: str, limit: int) -> list[ConversationPoint]:
        self._check_open()
        members = [k for k, (_, cid, _) in self._conversations.items() if cid == cluster_id]
        return [self._conversation(k) for k in members[: max(limit, 0)]]

    def search_conversations(
        self, vector: Vector, limit: int, cluster_id: str | None = None
    ) -> list[Hit]:
        self._check_open()
        query = check_vector(vector, self._dim, "search query")
        candidates = {
            k: v
            for k, (v, cid, _) in self._conversations.items()
            if cluster_id is None or cid == cluster_id
        }
        return _top(candidates, query, limit)

    def upsert_clusters(self, points: Sequence[ClusterPoint]) -> None:
        self._check_open()
        rows = [
            (
                p.cluster_id,
                check_vector(p.centroid, self._dim, f"cluster {p.cluster_id!r}"),
                json_payload(meta_payload(p.meta), f"cluster {p.cluster_id!r}"),
            )
            for p in points
        ]
        for cluster_id, vector, payload in rows:
            self._clusters[cluster_id] = (vector, payload)

    def get_clusters(self, cluster_ids: Sequence[str]) -> list[ClusterPoint]:
        self._check_open()
        return [self._cluster(c) for c in cluster_ids if c in self._clusters]

    def list_clusters(self) -> list[ClusterPoint]:
        self._check_open()
        return [self._cluster(c) for c in self._clusters]

    def delete_clusters(self, cluster_ids: Sequence[str]) -> None:
        self._check_open()
        for cluster_id in cluster_ids:
            self._clusters.pop(cluster_id, None)

    def search_clusters(self, vector: Vector, limit: int) -> list[Hit]:
        self._check_open()
        query = check_vector(vector, self._dim, "search query")
        return _top({k: v for k, (v, _) in self._clusters.items()}, query, limit)

    def close(self) -> None:
        self._closed = True


def _top(
    candidates: dict[str, npt.NDArray[np.float32]], query: npt.NDArray[np.float32], limit: int
) -> list[Hit]:
    if limit < 1 or not candidates:
        return []
    keys = list(candidates)
    scores = np.stack([candidates[k] for k in keys]) @ query
    order = np.argsort(-scores, kind="stable")[:limit]
    return [Hit(id=keys[i], score=float(scores[i])) for i in order]
