"""QdrantClusterStore: the ClusterStore on qdrant-client (a Qdrant server; :memory: in tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from qdrant_client import QdrantClient, models

from kura_stream.adapters.point_store import CLUSTER_FIELD, Encoded, PointStore, RawPoint
from kura_stream.adapters.stores import (
    DimensionMismatchError,
    check_vector,
    collection_names,
    point_id,
)
from kura_stream.records import Hit, Vector

logger = logging.getLogger(__name__)

_CLUSTER_FIELD = CLUSTER_FIELD


def server_client(url: str, api_key: str | None) -> QdrantClient:
    """A client for a Qdrant server.

    Args:
        url: The server URL, e.g. http://127.0.0.1:6333.
        api_key: The API key, or None for a server without one.

    Returns:
        A QdrantClient; the store built on it closes it.
    """
    return QdrantClient(url=url, api_key=api_key)


class QdrantClusterStore(PointStore[str]):
    """Conversations and clusters in two Qdrant collections, cosine distance.

    Collections are `<prefix>_conversations` and `<prefix>_clusters`, created if missing. Point
    ids are uuid5 of the key (the key is also in the payload); the user payload is one JSON
    text in "payload_json" beside chat_id / cluster_id, and cluster_id carries a keyword
    payload index on a server. Writes go in batches with wait=True, so they are applied (and
    in the server's WAL) before a call returns. The store owns the client: close() closes it.
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

    def close(self) -> None:
        """Close the client; further calls raise StoreClosedError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, handle: str, encoded: Encoded) -> None:
        for start in range(0, len(encoded), self._batch_size):
            batch = [
                models.PointStruct(id=pid, vector=vec, payload=payload)
                for pid, vec, payload in encoded[start : start + self._batch_size]
            ]
            self._client.upsert(handle, points=batch, wait=True)

    def _fetch(self, handle: str, keys: Sequence[str]) -> list[RawPoint]:
        if not keys:
            return []
        ids: list[models.ExtendedPointId] = [point_id(k) for k in dict.fromkeys(keys)]
        records = self._client.retrieve(handle, ids=ids, with_payload=True, with_vectors=True)
        return [(r.payload or {}, r.vector) for r in records]

    def _remove(self, handle: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        ids: list[models.ExtendedPointId] = [point_id(k) for k in dict.fromkeys(keys)]
        self._client.delete(handle, points_selector=models.PointIdsList(points=ids), wait=True)

    def _count(self, handle: str, cluster_id: str | None) -> int:
        result = self._client.count(handle, count_filter=_cluster_filter(cluster_id), exact=True)
        return int(result.count)

    def _scan(self, handle: str, batch_size: int) -> Iterator[list[RawPoint]]:
        offset: models.ExtendedPointId | None = None
        while True:
            records, offset = self._client.scroll(
                handle, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
            )
            if records:
                yield [(r.payload or {}, r.vector) for r in records]
            if offset is None:
                return

    def _scan_cluster(self, handle: str, cluster_id: str, limit: int) -> list[RawPoint]:
        records, _ = self._client.scroll(
            handle,
            scroll_filter=_cluster_filter(cluster_id),
            limit=limit,
            with_payload=True,
            with_vectors=True,
        )
        return [(r.payload or {}, r.vector) for r in records]

    def _nearest(
        self, handle: str, key: str, vector: Vector, limit: int, cluster_id: str | None
    ) -> list[Hit]:
        query = check_vector(vector, self._dim, "search query")
        if limit < 1:
            return []
        response = self._client.query_points(
            handle,
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
