"""HashEmbedder: a deterministic, model-free Embedder (hashed character n-grams) for unit tests."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_EMPTY = "\x00empty"


class HashEmbedder:
    """Character n-grams of the lower-cased text, hashed into dim signed buckets, L2-normalised.

    Texts sharing many n-grams get similar vectors, so clustering tests see some structure;
    the same text always gets the same vector, in any process (crc32, not Python's hash).
    """

    def __init__(self, dim: int = 64, n: int = 3) -> None:
        if dim < 1 or n < 1:
            raise ValueError("dim and n must be positive")
        self._dim = dim
        self._n = n

    @property
    def name(self) -> str:
        return f"hash-char{self._n}gram/d{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _grams(self, text: str) -> list[str]:
        padded = f"^{' '.join(text.lower().split())}$"
        grams = [padded[i : i + self._n] for i in range(len(padded) - self._n + 1)]
        return grams or [_EMPTY]  # a text too short for one n-gram still gets a direction

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float64)
        for row, text in enumerate(texts):
            for gram in self._grams(text):
                h = zlib.crc32(gram.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if (h >> 31) & 1 else -1.0
            if not out[row].any():  # the signed counts cancelled out exactly
                out[row, zlib.crc32(text.encode("utf-8")) % self._dim] = 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)
