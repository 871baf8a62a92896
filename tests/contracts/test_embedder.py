"""The Embedder contract every implementation passes, the factory and OpenAI error paths."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import SecretStr

from kura_stream.adapters.embedders import (
    EmbedderError,
    EmbeddingDimensionError,
    MiniLMEmbedder,
    OpenAIEmbedder,
    StaticEmbedder,
    make_embedder,
)
from kura_stream.adapters.embedders.common import minilm_dir, static_dir
from kura_stream.adapters.embedders.memo import MemoEmbedder
from kura_stream.protocols import Embedder
from kura_stream.settings import EmbedderSettings, LLMSettings, Settings
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.openai_embeddings_server import OpenAIEmbeddingsServer
from tests.fixtures_models import SMALL_BATCH as BATCH

Vectors = npt.NDArray[np.float32]

API_KEY = "test-key"
_WORD_LINES = (
    "the a customer order refund password account network router printer invoice recipe",
    "garden holiday flight hotel train doctor symptom lesson python error server database",
    "weather football museum violin budget salary contract email meeting schedule",
    "quickly slowly broken new old red green cheap expensive urgent please thanks why how",
)
WORDS = [word for line in _WORD_LINES for word in line.split()]


def long_text(n_words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=n_words))


def varied_texts(n: int) -> list[str]:
    """n texts of very different lengths, in an order that is not sorted by length."""
    return [long_text(1 + (i * 37) % 61, seed=i) for i in range(n)]


NON_ASCII = [
    "Wie koche ich Reis? Größe, Äpfel, Übermaß ☃",
    "日本語のテキストを埋め込みます",
    "مرحبا بالعالم، كيف حالك؟",
    "😀🎉🚀",
    "Ünïcödé façade naïve café — “quotes” \u2018and\u2019 dashes…",
    "e\u0301 combining, zero\u200bwidth, tab\tand\nnewline",
    "",
    "   ",
]


# --- the embedders under test ---------------------------------------------------------------


@pytest.fixture(scope="session")
def openai_server(minilm: MiniLMEmbedder) -> Iterator[OpenAIEmbeddingsServer]:
    with OpenAIEmbeddingsServer(minilm, api_key=API_KEY) as server:
        yield server


def openai_client(
    server: OpenAIEmbeddingsServer,
    *,
    batch_size: int = 5,
    dim: int | None = None,
    dimensions: int | None = None,
) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        base_url=server.base_url,
        model="all-minilm-l6-v2",
        api_key=SecretStr(API_KEY),
        dim=dim,
        dimensions=dimensions,
        batch_size=batch_size,
        max_retries=0,
        timeout_s=30.0,
    )


BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Embedder]] = {
    "hash": lambda _: HashEmbedder(),
    "minilm": lambda r: MiniLMEmbedder.from_dir(
        minilm_dir(r.getfixturevalue("models_dir")), batch_size=BATCH
    ),
    "static": lambda r: StaticEmbedder(static_dir(r.getfixturevalue("models_dir"))),
    "openai": lambda r: openai_client(r.getfixturevalue("openai_server")),
    # The memo wrapper must be indistinguishable from what it wraps (tiny memo: eviction too).
    "memo(static)": lambda r: MemoEmbedder(
        StaticEmbedder(static_dir(r.getfixturevalue("models_dir"))), size=3
    ),
    # serve's default for minilm: the same model in a worker process.
    "process(minilm)": lambda r: r.getfixturevalue("minilm_in_worker"),
}


@pytest.fixture(scope="session", params=list(BUILDERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def embedder(kind: str, request: pytest.FixtureRequest) -> Embedder:
    return BUILDERS[kind](request)


def assert_unit_rows(vectors: Vectors, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- the contract ---------------------------------------------------------------------------


def test_is_an_embedder(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert isinstance(embedder.name, str)
    assert embedder.name
    assert isinstance(embedder.dim, int)
    assert embedder.dim > 0


def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    texts = varied_texts(7)
    assert_unit_rows(embedder.embed(texts), 7, embedder.dim)


def test_deterministic(embedder: Embedder) -> None:
    texts = varied_texts(11)
    np.testing.assert_array_equal(embedder.embed(texts), embedder.embed(texts))


def test_same_name_and_vectors_from_a_fresh_instance(
    kind: str, embedder: Embedder, request: pytest.FixtureRequest
) -> None:
    other = BUILDERS[kind](request)
    assert (other.name, other.dim) == (embedder.name, embedder.dim)
    texts = varied_texts(5)
    np.testing.assert_allclose(other.embed(texts), embedder.embed(texts), atol=1e-6)


def test_empty_input(embedder: Embedder) -> None:
    nothing: list[tuple[str, ...] | list[str]] = [[], ()]
    for empty in nothing:
        out = embedder.embed(empty)
        assert out.shape == (0, embedder.dim)
        assert out.dtype == np.float32


def test_long_input(embedder: Embedder) -> None:
    long = long_text(5000)
    out = embedder.embed(["short text", long])
    assert_unit_rows(out, 2, embedder.dim)
    np.testing.assert_allclose(out[0], embedder.embed(["short text"])[0], atol=1e-5)


def test_non_ascii_and_blank_text(embedder: Embedder) -> None:
    assert_unit_rows(embedder.embed(NON_ASCII), len(NON_ASCII), embedder.dim)


def test_order_preserved_across_batch_boundaries(embedder: Embedder) -> None:
    texts = varied_texts(3 * BATCH + 3)
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    # Padding to different widths changes the arithmetic, not the result.
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(texts[::-1]), together[::-1], atol=1e-5)


# --- the factory and the OpenAI embedder's wire and error paths ----------------------------


def test_factory_builds_each_kind(models_dir: Path, openai_server: OpenAIEmbeddingsServer) -> None:
    def build(**fields: object) -> Embedder:
        return make_embedder(Settings(embedder=EmbedderSettings(models_dir=models_dir, **fields)))

    assert isinstance(build(kind="minilm"), MiniLMEmbedder)
    assert isinstance(build(kind="static"), StaticEmbedder)
    direct = build(
        kind="openai", openai_base_url=openai_server.base_url, openai_api_key=SecretStr(API_KEY)
    )
    assert direct.dim == 384
    # Without its own URL and key, the embedder uses the LLM endpoint's.
    llm = LLMSettings(base_url=openai_server.base_url, api_key=SecretStr(API_KEY))
    via_llm = make_embedder(Settings(embedder=EmbedderSettings(kind="openai"), llm=llm))
    np.testing.assert_allclose(via_llm.embed(["hi"]), direct.embed(["hi"]), atol=1e-6)


@pytest.fixture
def hash_server() -> Iterator[OpenAIEmbeddingsServer]:
    with OpenAIEmbeddingsServer(HashEmbedder(dim=32), api_key=API_KEY) as server:
        yield server


def test_openai_batches_requests(hash_server: OpenAIEmbeddingsServer) -> None:
    client = openai_client(hash_server, batch_size=5, dim=32)
    assert_unit_rows(client.embed(varied_texts(12)), 12, 32)
    assert hash_server.stats.batch_sizes == [5, 5, 2]
    assert set(hash_server.stats.models) == {"all-minilm-l6-v2"}


def test_openai_passes_dimensions(hash_server: OpenAIEmbeddingsServer) -> None:
    client = openai_client(hash_server, dimensions=16)
    assert client.dim == 16
    assert_unit_rows(client.embed(varied_texts(3)), 3, 16)


def test_openai_http_failure_is_a_clear_error(hash_server: OpenAIEmbeddingsServer) -> None:
    hash_server.faults.status = 500
    with pytest.raises(EmbedderError, match="HTTP 500"):
        openai_client(hash_server, dim=32).embed(["a"])


def test_openai_wrong_key_is_a_clear_error(hash_server: OpenAIEmbeddingsServer) -> None:
    client = OpenAIEmbedder(
        base_url=hash_server.base_url, model="m", api_key=SecretStr("wrong"), max_retries=0
    )
    with pytest.raises(EmbedderError, match="HTTP 401"):
        client.embed(["a"])


def test_openai_dimension_mismatch(hash_server: OpenAIEmbeddingsServer) -> None:
    with pytest.raises(EmbeddingDimensionError, match="expected 384"):
        openai_client(hash_server, dim=384).embed(["a"])
    client = openai_client(hash_server)
    assert client.dim == 32  # probed
    hash_server.faults.truncate_dims = 8
    with pytest.raises(EmbeddingDimensionError, match="returned 8-dim vectors"):
        client.embed(["a", "b"])


def test_openai_missing_rows_are_an_error(hash_server: OpenAIEmbeddingsServer) -> None:
    hash_server.faults.drop_last = True
    with pytest.raises(EmbedderError, match="1 embeddings for 2 texts"):
        openai_client(hash_server, dim=32).embed(["a", "b"])


def test_openai_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIEmbedder(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0, dim=4)
    with pytest.raises(EmbedderError, match="failed: APIConnectionError"):
        client.embed(["a"])
