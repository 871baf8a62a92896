"""open_store(): the configured ClusterStore, a Qdrant server or the embedded edge store."""

from __future__ import annotations

import logging

from kura_stream.protocols import ClusterStore
from kura_stream.settings import StoreSettings

logger = logging.getLogger(__name__)


def open_store(settings: StoreSettings, dim: int) -> ClusterStore:
    """Open the configured cluster store.

    A Qdrant server when settings.qdrant_url is set, else the embedded edge store (Qdrant's
    engine in-process) at settings.path. Only the chosen adapter's SDK is imported.

    Args:
        settings: The store section of Settings.
        dim: Vector length of both collections (the embedder's dim).

    Returns:
        An open ClusterStore; close() it when done.

    Raises:
        StoreLockedError: the embedded store is open in another process.
        DimensionMismatchError: existing collections hold vectors of another length.
    """
    if settings.qdrant_url:
        from kura_stream.adapters.qdrant_store import QdrantClusterStore, server_client

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        logger.info("cluster store: Qdrant server at %s", settings.qdrant_url)
        return QdrantClusterStore(
            server_client(settings.qdrant_url, api_key), settings.collection_prefix, dim
        )

    from kura_stream.adapters.edge_store import EdgeClusterStore

    logger.info("cluster store: embedded at %s", settings.path)
    return EdgeClusterStore(settings.path, dim, prefix=settings.collection_prefix)
