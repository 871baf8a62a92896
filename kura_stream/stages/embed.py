"""The embed stage: vectors of summaries' own words, cached by text and embedder."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kura_stream.cache import Cache, make_key
from kura_stream.protocols import Embedder
from kura_stream.types import Summary

logger = logging.getLogger(__name__)

CACHE_NAMESPACE = "embedding"


def embedding_cache_key(text: str, embedder: Embedder) -> str:
    """The cache key of a text's vector: text hash + embedder identity."""
    return make_key(CACHE_NAMESPACE, text, producer=embedder.name)


def _cached(
    cache: Cache | None, keys: Sequence[str], dim: int
) -> dict[str, npt.NDArray[np.float32]]:
    """The cached vectors of `keys` (an entry of another length is left out, a miss)."""
    found: dict[str, npt.NDArray[np.float32]] = {}
    if cache is None:
        return found
    for key, raw in cache.get_many_bytes(keys).items():
        if len(raw) == 4 * dim:
            found[key] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            logger.warning(
                "cached vector %s has %d bytes, not %d: miss", key[:12], len(raw), 4 * dim
            )
    return found


def embed_texts(
    texts: Sequence[str],
    *,
    embedder: Embedder,
    cache: Cache | None = None,
    batch_size: int = 64,
) -> npt.NDArray[np.float32]:
    """Embed texts, reading and filling the cache; only misses reach the embedder.

    Identical texts are embedded once. Vectors are stored as little-endian float32 bytes; a
    cached entry of the wrong length (another dimension) is a miss.

    Args:
        texts: The texts.
        embedder: The Embedder.
        cache: Where vectors are kept across runs; None embeds everything.
        batch_size: Texts per embedder call.

    Returns:
        A float32 array (len(texts), embedder.dim), rows in input order.

    Raises:
        ValueError: the embedder returned an array of the wrong shape.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    dim = embedder.dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keys = [embedding_cache_key(t, embedder) for t in texts]
    found = _cached(cache, keys, dim)
    misses = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
    miss_keys = list(misses)
    for start in range(0, len(miss_keys), batch_size):
        chunk = miss_keys[start : start + batch_size]
        vectors = np.asarray(embedder.embed([misses[k] for k in chunk]), dtype=np.float32)
        if vectors.shape != (len(chunk), dim):
            raise ValueError(
                f"embedder {embedder.name} returned {vectors.shape}, not ({len(chunk)}, {dim})"
            )
        fresh = dict(zip(chunk, vectors, strict=True))
        found.update(fresh)
        if cache is not None:
            cache.set_many_bytes(
                {k: v.astype("<f4").tobytes() for k, v in fresh.items()}, namespace=CACHE_NAMESPACE
            )
    for i, key in enumerate(keys):
        out[i] = found[key]
    logger.debug(
        "embedded %d texts: %d from cache, %d new",
        len(texts),
        len(texts) - len(misses),
        len(misses),
    )
    return out


def embed_summaries(
    summaries: Sequence[Summary],
    *,
    embedder: Embedder,
    cache: Cache | None = None,
    batch_size: int = 64,
) -> npt.NDArray[np.float32]:
    """Embed each summary's embedding_text(): its own words, never ids or metadata.

    Args:
        summaries: The summaries.
        embedder: The Embedder.
        cache: Vector cache (key: text hash + embedder.name); None embeds everything.
        batch_size: Texts per embedder call.

    Returns:
        A float32 array (len(summaries), embedder.dim), rows in input order.
    """
    texts = [s.embedding_text() for s in summaries]
    return embed_texts(texts, embedder=embedder, cache=cache, batch_size=batch_size)
