"""What the embedders share: errors, model folder layout, float32 L2 normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
"""A (n, dim) float32 array, one row per text."""

FETCH_HINT = "run `kura-stream models fetch` (or scripts/bootstrap.sh) first"
"""What to do when local model files are missing."""


def minilm_dir(models_dir: Path) -> Path:
    """Folder of the MiniLM graph and tokenizer under EmbedderSettings.models_dir."""
    return models_dir / "all-minilm-l6-v2"


def static_dir(models_dir: Path) -> Path:
    """Folder of the static model distilled from MiniLM (a model2vec folder)."""
    return models_dir / "all-minilm-l6-v2-static256"


class EmbedderError(RuntimeError):
    """An embedder could not turn texts into vectors (bad response, failed request, bad files)."""


class ModelFilesMissingError(EmbedderError):
    """A local embedder's model files are not on disk (set-up has not run)."""


class EmbeddingDimensionError(EmbedderError):
    """An embedding endpoint returned vectors of another length than expected."""


def empty(dim: int) -> Vectors:
    """The (0, dim) float32 result of embedding no texts."""
    return np.zeros((0, dim), dtype=np.float32)


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length, as float32.

    Args:
        vectors: A (n, dim) array of any float dtype.

    Returns:
        A new (n, dim) float32 array whose rows have unit L2 norm.

    Raises:
        EmbedderError: a row is zero or not finite, so it has no direction.
    """
    out = np.asarray(vectors, dtype=np.float32)
    # Norms in float64: float32 sums over 384 squares lose the last bit of unit length.
    norms = np.linalg.norm(out.astype(np.float64), axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] <= 1e-12)
    if bad.any():
        raise EmbedderError(f"{int(bad.sum())} vector(s) are zero or not finite; cannot normalise")
    result: Vectors = (out / norms).astype(np.float32)
    return result
