"""The embed stage: only summaries' own words are embedded, misses batched, vectors cached."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.cache import Cache
from kura_stream.protocols import Embedder
from kura_stream.stages.embed import embed_summaries, embedding_cache_key
from kura_stream.types import Summary
from tests.fakes.hash_embedder import HashEmbedder


class TinyHashEmbedder:
    """Bag of hashed words, L2-normalised: word overlap is similarity (the shared HashEmbedder
    hashes character n-grams), and the name is settable."""

    def __init__(self, dim: int = 32, name: str = "fake:tiny-hash") -> None:
        self._dim = dim
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                out[i, h % self._dim] += 1.0
            out[i, 0] += 1e-3  # never all zero
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


class Counting:
    """Wraps an Embedder and records every call."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        return self.inner.embed(texts)

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


def make_embedder() -> Embedder:
    return HashEmbedder()


def summaries(n: int, prefix: str = "topic") -> list[Summary]:
    return [
        Summary(
            chat_id=f"secret-id-{i}",
            summary=f"The user asked about {prefix} {i}.",
            request=f"help with {prefix} {i}",
            metadata={"account": f"acct-{i}"},
        )
        for i in range(n)
    ]


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "c.sqlite")


def test_embeds_only_the_summary_text_in_order() -> None:
    emb = Counting(make_embedder())
    items = summaries(3)
    vectors = embed_summaries(items, embedder=emb, cache=None)
    assert vectors.shape == (3, emb.dim)
    assert vectors.dtype == np.float32
    assert emb.texts == [s.embedding_text() for s in items]
    assert not any("secret-id" in t or "acct-" in t for t in emb.texts)
    np.testing.assert_allclose(vectors, emb.inner.embed([s.embedding_text() for s in items]))


def test_second_run_is_served_from_cache(cache: Cache) -> None:
    emb = Counting(make_embedder())
    first = embed_summaries(summaries(5), embedder=emb, cache=cache)
    second = embed_summaries(summaries(5), embedder=emb, cache=cache)
    assert len(emb.calls) == 1
    np.testing.assert_array_equal(first, second)
    assert cache.count("embedding") == 5


def test_only_misses_are_embedded_in_batches(cache: Cache) -> None:
    emb = Counting(make_embedder())
    embed_summaries(summaries(3), embedder=emb, cache=cache)
    emb.calls.clear()
    items = summaries(3) + summaries(5, prefix="new")
    vectors = embed_summaries(items, embedder=emb, cache=cache, batch_size=2)
    assert [len(c) for c in emb.calls] == [2, 2, 1]
    assert all("new" in t for t in emb.texts)
    assert vectors.shape == (8, emb.dim)


def test_identical_texts_are_embedded_once(cache: Cache) -> None:
    emb = Counting(make_embedder())
    s = summaries(1)[0]
    vectors = embed_summaries(
        [s, s.model_copy(update={"chat_id": "x"}), s], embedder=emb, cache=cache
    )
    assert emb.texts == [s.embedding_text()]
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_another_embedder_misses(cache: Cache) -> None:
    a = Counting(TinyHashEmbedder(name="fake:a"))
    b = Counting(TinyHashEmbedder(name="fake:b"))
    embed_summaries(summaries(2), embedder=a, cache=cache)
    embed_summaries(summaries(2), embedder=b, cache=cache)
    assert len(a.calls) == len(b.calls) == 1


def test_wrong_size_entry_is_a_miss(cache: Cache) -> None:
    emb = Counting(TinyHashEmbedder(dim=8))
    s = summaries(1)
    cache.set_bytes(embedding_cache_key(s[0].embedding_text(), emb), b"\x00" * 12, namespace="x")
    vectors = embed_summaries(s, embedder=emb, cache=cache)
    assert len(emb.calls) == 1
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0)


def test_empty_input_and_bad_embedder() -> None:
    emb = make_embedder()
    assert embed_summaries([], embedder=emb).shape == (0, emb.dim)

    class Broken(TinyHashEmbedder):
        def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.zeros((len(texts), 3), dtype=np.float32)

    with pytest.raises(ValueError, match="returned"):
        embed_summaries(summaries(1), embedder=Broken())
