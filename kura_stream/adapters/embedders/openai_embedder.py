"""Embeddings from any OpenAI-compatible /v1/embeddings endpoint, through the openai SDK."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import openai
from pydantic import SecretStr

from kura_stream.adapters.embedders.common import (
    EmbedderError,
    EmbeddingDimensionError,
    Vectors,
    empty,
    l2_normalise,
)

logger = logging.getLogger(__name__)

_PROBE = "dimension probe"


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint: batched requests, vectors L2-normalised.

    The width is given, or learnt from one probe request the first time it is needed; every
    response after that is checked against it.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: SecretStr | None = None,
        dim: int | None = None,
        dimensions: int | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        """Configure the client; no request is made here.

        Args:
            base_url: The endpoint's base URL, e.g. http://127.0.0.1:8088/v1.
            model: Model name sent with each request.
            api_key: API key (never logged); local servers accept any.
            dim: Expected vector width; learnt from a probe request when None.
            dimensions: Ask the server for this width (text-embedding-3 models support it);
                also the expected width when dim is None.
            batch_size: Texts per request.
            timeout_s: Per-request timeout, seconds.
            max_retries: The SDK's retries (with backoff) on connection errors, 408/409/429/5xx.

        Raises:
            ValueError: batch_size below 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._dimensions = dimensions
        self._dim = dim if dim is not None else dimensions
        self._batch_size = batch_size
        key = api_key.get_secret_value() if api_key is not None else "none"
        self._client = openai.OpenAI(
            base_url=self._base_url, api_key=key, timeout=timeout_s, max_retries=max_retries
        )

    @property
    def name(self) -> str:
        """Endpoint, model and width: a cache-key identity (may make a probe request)."""
        url = urlsplit(self._base_url)
        return f"openai:{self._model}@{url.netloc}{url.path}/d{self.dim}"

    @property
    def dim(self) -> int:
        """Width of the vectors (may make a probe request).

        Raises:
            EmbedderError: the probe request failed.
        """
        if self._dim is None:
            probe = self._request([_PROBE])
            self._dim = int(probe.shape[1])
            logger.info("%s serves %s with %d dims", self._base_url, self._model, self._dim)
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (see the Embedder protocol), batch_size texts per request.

        Returns:
            (len(texts), dim) float32 rows of unit length, in input order.

        Raises:
            EmbeddingDimensionError: the endpoint returned vectors of another width.
            EmbedderError: a request failed (HTTP error, connection, timeout) or the response
                was malformed.
        """
        if not texts:
            return empty(self.dim)
        parts = [
            self._checked(self._request(list(texts[i : i + self._batch_size])))
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def _checked(self, vectors: npt.NDArray[np.float64]) -> Vectors:
        if vectors.shape[1] != self.dim:
            raise EmbeddingDimensionError(
                f"{self._base_url} returned {vectors.shape[1]}-dim vectors for {self._model!r}, "
                f"expected {self.dim}"
            )
        return l2_normalise(vectors)

    def _request(self, batch: list[str]) -> npt.NDArray[np.float64]:
        """The raw vectors of one request, in input order."""
        try:
            response = self._client.embeddings.create(
                input=batch,
                model=self._model,
                encoding_format="float",
                dimensions=self._dimensions if self._dimensions is not None else openai.omit,
            )
        except openai.APIStatusError as err:
            raise EmbedderError(
                f"embeddings request to {self._base_url} failed with HTTP {err.status_code}: "
                f"{err.message}"
            ) from err
        except openai.APIError as err:  # connection refused, timeout, unparseable body
            raise EmbedderError(
                f"embeddings request to {self._base_url} failed: {type(err).__name__}: {err}"
            ) from err
        rows = sorted(response.data, key=lambda item: item.index)
        if [row.index for row in rows] != list(range(len(batch))):
            raise EmbedderError(
                f"{self._base_url} answered {len(rows)} embeddings for {len(batch)} texts"
            )
        widths = {len(row.embedding) for row in rows}
        if len(widths) != 1:
            raise EmbeddingDimensionError(
                f"{self._base_url} returned vectors of mixed widths {sorted(widths)}"
            )
        matrix: npt.NDArray[np.float64] = np.array(
            [row.embedding for row in rows], dtype=np.float64
        )
        return matrix
