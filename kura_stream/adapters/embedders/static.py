"""A model2vec static embedder: a token-vector lookup and a mean, thousands of texts a second."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from model2vec import StaticModel

from kura_stream.adapters.embedders.common import (
    FETCH_HINT,
    ModelFilesMissingError,
    Vectors,
    empty,
    l2_normalise,
)

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")
"""The files model2vec reads from a model folder."""
_ENCODE_BATCH = 1024


class StaticEmbedder:
    """A model2vec StaticModel loaded from a local folder (see model_files for how it is made).

    Vectors are the mean of the text's token vectors, L2-normalised in float32. A text with no
    known token at all (empty, blank, only emoji) gets the [UNK] token's vector, so every row
    has unit length.
    """

    def __init__(self, folder: Path, *, label: str = "all-MiniLM-L6-v2/m2v-static") -> None:
        """Load the model.

        Args:
            folder: A model2vec folder (model.safetensors, tokenizer.json, config.json).
            label: Model and variant for the name; the dims and a digest of the vectors
                are appended.

        Raises:
            ModelFilesMissingError: the folder or one of its files is missing.
        """
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            # Never let model2vec see a missing folder: it would try the Hugging Face hub.
            raise ModelFilesMissingError(
                f"static model files {missing} are missing in {folder}: {FETCH_HINT}"
            )
        with (folder / "model.safetensors").open("rb") as f:
            self._digest = hashlib.file_digest(f, "sha256").hexdigest()[:12]
        # float32 in memory: numpy's float16 arithmetic is emulated and loses precision.
        self._model = StaticModel.from_pretrained(folder, normalize=True, quantize_to="float32")
        self._dim = int(self._model.dim)
        self._label = label
        unk = self._model.unk_token_id
        fallback = self._model.embedding[unk if unk is not None else 0]
        self._fallback = l2_normalise(np.asarray(fallback, dtype=np.float32)[None, :])[0]
        logger.debug("loaded static model from %s (%d dims)", folder, self._dim)

    @property
    def name(self) -> str:
        """Model, variant, a digest of its vectors, and width: a cache-key identity."""
        return f"{self._label}/{self._digest}/d{self._dim}"

    @property
    def dim(self) -> int:
        """Width of the vectors (the PCA dims of the distillation)."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (see the Embedder protocol).

        Returns:
            (len(texts), dim) float32 rows of unit length, in input order.
        """
        if not texts:
            return empty(self._dim)
        raw = self._model.encode(
            list(texts),
            normalize=False,
            batch_size=_ENCODE_BATCH,
            use_multiprocessing=False,
            show_progress_bar=False,
        )
        out = np.asarray(raw, dtype=np.float32).reshape(len(texts), self._dim)
        blank = np.linalg.norm(out, axis=1) <= 1e-12
        out[blank] = self._fallback
        return l2_normalise(out)
