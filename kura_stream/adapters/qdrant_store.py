"""QdrantClusterStore: the ClusterStore on qdrant-client (a Qdrant server; :memory: in tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from kura_stream.adapters.stores import (
    DimensionMismatchError,
    StoreClosedError,
    check_vector,
    collection_names,
    decode_cluster,
    decode_conversation,
    encode_cluster,
    encode_conversation,
    in_input_order,
    point_id,
)
from kura_stream.records import ClusterPoint, ConversationPoint, Hit, Vector

logger = logging.getLogger(__name__)

_CLUSTER_FIELD = "cluster_id"


def server_client(url: str, api_key: str | None) -> QdrantClient:
    """A client for a Qdrant server.

    Args:
        url: The server URL, e.g. http://127.0.0.1:6333.
        api_key: The API key, or None for a server without one.

    Returns:
        A QdrantClient; the store built on it closes it.
    """
    return QdrantClient(url=url, api_key=api_key)


class QdrantClusterStore:
    """Conversations and clusters in two Qdrant collections, cosine distance.

    Collections are `<prefix>_conversations` and `<prefix>_clusters`, created if missing. Point
    ids are uuid5 of the key (the key is also in the payload); the user payload is nested under
    "payload" beside chat_id / cluster_id, and cluster_id carries a keyword payload index on a
    server. Writes go in batches with wait=True, so they are applied (and in the server's WAL)
    before a call returns. The store owns the client: close() closes it.
    """

    def __init__(
        self, client: QdrantClient, prefix: str, dim: int, *, batch_size: int = 256
    ) -> None:
        """Open (and create if missing) the two collections.

        Args:
            client: A connected client (server URL, or location=":memory:" for tests).
            prefix: Collection name prefix.
            dim: Vector length of both collections.
            batch_size: Points per upsert request.

        Raises:
            DimensionMismatchError: an existing collection has another vector length or distance.
        """
        if dim < 1 or batch_size < 1:
            raise ValueError("dim and batch_size must be positive")
        self._client = client
        self._dim = dim
        self._batch_size = batch_size
        self._closed = False
        self._conversations, self._clusters = collection_names(prefix)
        options = client.init_options
        self._local = options.get("location") == ":memory:" or options.get("path") is not None
        self._ensure_collection(self._conversations, index_cluster_id=True)
        self._ensure_collection(self._clusters, index_cluster_id=False)

    def _ensure_collection(self, name: str, *, index_cluster_id: bool) -> None:
        if not self._client.collection_exists(name):
            logger.info("creating Qdrant collection %s (%d-d, cosine)", name, self._dim)
            try:
                self._client.create_collection(
                    name,
                    vectors_config=models.VectorParams(
                        size=self._dim, distance=models.Distance.COSINE
                    ),
                )
            except Exception:
                # Another process may have created it meanwhile; then it is checked below.
                if not self._client.collection_exists(name):
                    raise
        info = self._client.get_collection(name)
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise DimensionMismatchError(
                f"Qdrant collection {name!r} uses named vectors; expected one unnamed "
                f"{self._dim}-d cosine vector"
            )
        if params.size != self._dim or params.distance != models.Distance.COSINE:
            raise DimensionMismatchError(
                f"Qdrant collection {name!r} holds {params.size}-d vectors with "
                f"{params.distance.value} distance, but this store needs {self._dim}-d cosine; "
                f"use another collection prefix or delete the collection"
            )
        # Local mode ignores payload indexes (and warns); a server uses it for filtered counts.
        if index_cluster_id and not self._local and _CLUSTER_FIELD not in info.payload_schema:
            self._client.create_payload_index(
                name, _CLUSTER_FIELD, models.PayloadSchemaType.KEYWORD, wait=True
            )

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the cluster store is closed")

    @property
    def dim(self) -> int:
        """Vector length of both collections."""
        return self._dim

    # -- conversations ---------------------------------------------------------------------

    def upsert_conversations(self, points: Sequence[ConversationPoint]) -> None:
        """Insert or replace conversations by chat_id; all are validated before any is written."""
        self._check_open()
        encoded = [encode_conversation(p, self._dim) for p in points]
        self._upsert(self._conversations, encoded)

    def get_conversations(self, chat_ids: Sequence[str]) -> list[ConversationPoint]:
        """The stored conversations among chat_ids (missing ids left out), in input order."""
        self._check_open()
        records = self._retrieve(self._conversations, chat_ids)
        found = [decode_conversation(r.payload or {}, r.vector) for r in records]
        return in_input_order(chat_ids, {p.chat_id: p for p in found})

    def delete_conversations(self, chat_ids: Sequence[str]) -> None:
        """Delete conversations by chat_id; unknown ids are ignored."""
        self._check_open()
        self._delete(self._conversations, chat_ids)

    def count_conversations(self, cluster_id: str | None = None) -> int:
        """Exact number of conversations, all of them or those in one cluster."""
        self._check_open()
        result = self._client.count(
            self._conversations, count_filter=_cluster_filter(cluster_id), exact=True
        )
        return int(result.count)

    def iter_conversations(self, batch_size: int = 1000) -> Iterator[list[ConversationPoint]]:
        """Every stored conversation with its vector, in batches of at most batch_size."""
        self._check_open()
        for records in self._scroll(self._conversations, batch_size, None):
            yield [decode_conversation(r.payload or {}, r.vector) for r in records]

    def conversations_in_cluster(self, cluster_id: str, limit: int) -> list[ConversationPoint]:
        """Up to limit conversations whose cluster_id is cluster_id."""
        self._check_open()
        if limit < 1:
            return []
        records, _ = self._client.scroll(
            self._conversations,
            scroll_filter=_cluster_filter(cluster_id),
            limit=limit,
            with_payload=True,
            with_vectors=True,
        )
        return [decode_conversation(r.payload or {}, r.vector) for r in records]

    def search_conversations(
        self, vector: Vector, limit: int, cluster_id: str | None = None
    ) -> list[Hit]:
        """Nearest conversations by cosine similarity, best first, optionally in one cluster."""
        self._check_open()
        return self._search(self._conversations, "chat_id", vector, limit, cluster_id)

    # -- clusters --------------------------------------------------------------------------

    def upsert_clusters(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters by cluster_id; all are validated before any is written."""
        self._check_open()
        encoded = [encode_cluster(p, self._dim) for p in points]
        self._upsert(self._clusters, encoded)

    def get_clusters(self, cluster_ids: Sequence[str]) -> list[ClusterPoint]:
        """The stored clusters among cluster_ids (missing ids left out), in input order."""
        self._check_open()
        records = self._retrieve(self._clusters, cluster_ids)
        found = [decode_cluster(r.payload or {}, r.vector) for r in records]
        return in_input_order(cluster_ids, {p.cluster_id: p for p in found})

    def list_clusters(self) -> list[ClusterPoint]:
        """Every stored cluster."""
        self._check_open()
        return [
            decode_cluster(r.payload or {}, r.vector)
            for records in self._scroll(self._clusters, 1000, None)
            for r in records
        ]

    def delete_clusters(self, cluster_ids: Sequence[str]) -> None:
        """Delete clusters by cluster_id; unknown ids are ignored."""
        self._check_open()
        self._delete(self._clusters, cluster_ids)

    def search_clusters(self, vector: Vector, limit: int) -> list[Hit]:
        """Nearest clusters by cosine similarity of their centroids, best first."""
        self._check_open()
        return self._search(self._clusters, _CLUSTER_FIELD, vector, limit, None)

    def close(self) -> None:
        """Close the client; further calls raise StoreClosedError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- helpers ---------------------------------------------------------------------------

    def _upsert(
        self, collection: str, encoded: list[tuple[str, list[float], dict[str, Any]]]
    ) -> None:
        for start in range(0, len(encoded), self._batch_size):
            batch = [
                models.PointStruct(id=pid, vector=vec, payload=payload)
                for pid, vec, payload in encoded[start : start + self._batch_size]
            ]
            self._client.upsert(collection, points=batch, wait=True)

    def _retrieve(self, collection: str, keys: Sequence[str]) -> list[models.Record]:
        if not keys:
            return []
        ids: list[models.ExtendedPointId] = [point_id(k) for k in dict.fromkeys(keys)]
        return self._client.retrieve(collection, ids=ids, with_payload=True, with_vectors=True)

    def _delete(self, collection: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        ids: list[models.ExtendedPointId] = [point_id(k) for k in dict.fromkeys(keys)]
        self._client.delete(collection, points_selector=models.PointIdsList(points=ids), wait=True)

    def _scroll(
        self, collection: str, batch_size: int, flt: models.Filter | None
    ) -> Iterator[list[models.Record]]:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        offset: models.ExtendedPointId | None = None
        while True:
            records, offset = self._client.scroll(
                collection,
                scroll_filter=flt,
                limit=batch_size,
                offset=offset,
                with_payload=True,
                with_vectors=True,
            )
            if records:
                yield records
            if offset is None:
                return

    def _search(
        self, collection: str, key: str, vector: Vector, limit: int, cluster_id: str | None
    ) -> list[Hit]:
        query = check_vector(vector, self._dim, "search query")
        if limit < 1:
            return []
        response = self._client.query_points(
            collection,
            query=query.tolist(),
            query_filter=_cluster_filter(cluster_id),
            limit=limit,
            with_payload=[key],
        )
        return [Hit(id=str((p.payload or {})[key]), score=float(p.score)) for p in response.points]


def _cluster_filter(cluster_id: str | None) -> models.Filter | None:
    if cluster_id is None:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=_CLUSTER_FIELD, match=models.MatchValue(value=cluster_id))]
    )
