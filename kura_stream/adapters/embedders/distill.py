"""model2vec's distillation recipe without torch: MiniLM on onnxruntime -> a StaticModel folder."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from kura_stream.adapters.embedders.minilm import hidden_states, make_session

logger = logging.getLogger(__name__)

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""What the static model is distilled from (goes into its model card)."""


@dataclass(frozen=True)
class Recipe:
    """Every knob of the distillation; a change of any of them means a new model.

    The defaults are model2vec 0.10's `distill(model, pca_dims=256)`. threads and batch_size
    only fix the arithmetic: the same values give the same bytes on the same machine.

    Attributes:
        version: Bumped when this module changes what it writes.
        pca_dims: PCA components kept.
        sif_coefficient: a in a / (a + p(token)), p from Zipf's law over the vocabulary order.
        token_remove_pattern: Vocabulary entries matching this (re.match) are dropped.
        dtype: Stored dtype of the vectors (model2vec's default float16).
        threads: onnxruntime intra-op threads of the forward pass.
        batch_size: Tokens per forward pass.
    """

    version: int = 1
    pca_dims: int = 256
    sif_coefficient: float = 1e-4
    token_remove_pattern: str = r"\[unused\d+\]"
    dtype: str = "float16"
    threads: int = 1
    batch_size: int = 512

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-able data (for the manifest)."""
        return asdict(self)


@dataclass(frozen=True)
class DistilStats:
    """What a distillation did.

    Attributes:
        vocab_size: Tokens in the static model.
        dim: Width of its vectors.
        explained_variance: Share of the variance the PCA kept.
        forward_s: Seconds of the forward passes.
        total_s: Seconds in all.
    """

    vocab_size: int
    dim: int
    explained_variance: float
    forward_s: float
    total_s: float


def zipf_sif_weights(n: int, sif_coefficient: float) -> npt.NDArray[np.float64]:
    """model2vec's token weights: p(rank) from Zipf's law (1/rank from rank 2), then SIF.

    Args:
        n: Vocabulary size; token i (in id order) has rank i + 2.
        sif_coefficient: The SIF a.

    Returns:
        a / (a + p) for each token, shape (n,).
    """
    inv_rank = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    proba = inv_rank / inv_rank.sum()
    weights: npt.NDArray[np.float64] = sif_coefficient / (sif_coefficient + proba)
    return weights


def _kept_vocabulary(tokenizer_json: dict[str, Any], pattern: str) -> list[tuple[str, int]]:
    """(token, original id) in id order, without the tokens matching pattern."""
    vocab: dict[str, int] = tokenizer_json["model"]["vocab"]
    regex = re.compile(pattern)
    return [(t, i) for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if not regex.match(t)]


def _static_tokenizer(tokenizer_json: dict[str, Any], kept: list[tuple[str, int]]) -> Tokenizer:
    """The word-piece tokenizer over the kept tokens, renumbered 0..n-1 in their old order.

    As model2vec does: no post-processor (no [CLS]/[SEP] at inference), no truncation of its
    own, padding switched off, special tokens kept as added tokens under their new ids.
    """
    new_ids = {token: new for new, (token, _) in enumerate(kept)}
    data = json.loads(json.dumps(tokenizer_json))  # deep copy
    data["model"]["vocab"] = new_ids
    data["added_tokens"] = [
        {**added, "id": new_ids[added["content"]]}
        for added in data.get("added_tokens", [])
        if added["content"] in new_ids
    ]
    data["post_processor"] = None
    data["truncation"] = None
    data["padding"] = None
    return Tokenizer.from_str(json.dumps(data))


def _forward(
    onnx_path: Path, ids: list[int], cls_id: int, sep_id: int, recipe: Recipe
) -> npt.NDArray[np.float32]:
    """Mean of the hidden states of [CLS] token [SEP], for each token id, in order."""
    session = make_session(onnx_path, threads=recipe.threads)
    triples = np.array([[cls_id, i, sep_id] for i in ids], dtype=np.int64)
    mask = np.ones_like(triples)
    out = np.empty((len(ids), 384), dtype=np.float32)
    for start in range(0, len(triples), recipe.batch_size):
        stop = start + recipe.batch_size
        # Every sequence has 3 real tokens, so the masked mean is a plain mean.
        out[start:stop] = hidden_states(session, triples[start:stop], mask[start:stop]).mean(1)
    return np.nan_to_num(out)


def _reduce(hidden: npt.NDArray[Any], recipe: Recipe) -> tuple[npt.NDArray[Any], float]:
    """PCA to recipe.pca_dims, Zipf/SIF-weighted, in recipe.dtype; and the variance kept."""
    # Imported here: set-up needs it, the callers that only want Recipe do not.
    from sklearn.decomposition import PCA

    # covariance_eigh: the 384x384 covariance's eigenvectors, as model2vec 0.10 computes its
    # PCA; exact, deterministic and about a second (a full SVD of 29k rows took 5-35 s).
    pca = PCA(n_components=recipe.pca_dims, svd_solver="covariance_eigh")
    reduced = pca.fit_transform(hidden.astype(np.float64))
    weighted = reduced * zipf_sif_weights(len(hidden), recipe.sif_coefficient)[:, None]
    return weighted.astype(np.dtype(recipe.dtype)), float(pca.explained_variance_ratio_.sum())


def _save_static(
    vectors: npt.NDArray[Any],
    tokenizer_json: dict[str, Any],
    kept: list[tuple[str, int]],
    recipe: Recipe,
    out_dir: Path,
    model_name: str,
) -> None:
    """Save the vectors with a tokenizer over the kept vocabulary as a model2vec folder."""
    from model2vec import StaticModel

    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": BASE_MODEL,
        "apply_pca": recipe.pca_dims,
        "sif_coefficient": recipe.sif_coefficient,
        "hidden_dim": recipe.pca_dims,
        "seq_length": 1000000,
        "normalize": True,
        "pooling": "mean",
    }
    model = StaticModel(
        vectors=vectors,
        tokenizer=_static_tokenizer(tokenizer_json, kept),
        config=config,
        normalize=True,
        base_model_name=BASE_MODEL,
        language=["en"],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, model_name=model_name)


def distil_static(
    onnx_path: Path,
    tokenizer_path: Path,
    out_dir: Path,
    *,
    recipe: Recipe | None = None,
    model_name: str | None = None,
) -> DistilStats:
    """Distil a model2vec StaticModel from the MiniLM ONNX graph and save it to out_dir.

    model2vec 0.10's recipe (its `distill` needs torch): drop the [unusedN] tokens, pass each
    remaining vocabulary token through the model as [CLS] token [SEP] and mean-pool, reduce
    to pca_dims with PCA, weight each row by Zipf/SIF of its rank, store as float16 with a
    tokenizer over the same vocabulary. `StaticModel.from_pretrained(out_dir)` loads it.

    Args:
        onnx_path: all-MiniLM-L6-v2 as ONNX.
        tokenizer_path: Its tokenizer.json (BERT uncased word pieces).
        out_dir: Folder to write (created; files in it are overwritten).
        recipe: The knobs; model2vec's defaults when None.
        model_name: Name in the model card (default: out_dir's name).

    Returns:
        Sizes and timings.
    """
    recipe = recipe or Recipe()
    started = time.perf_counter()
    tokenizer_json = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    kept = _kept_vocabulary(tokenizer_json, recipe.token_remove_pattern)
    vocab = tokenizer_json["model"]["vocab"]
    logger.info("distilling %d tokens through %s", len(kept), onnx_path.name)
    hidden = _forward(onnx_path, [i for _, i in kept], vocab["[CLS]"], vocab["[SEP]"], recipe)
    forward_s = time.perf_counter() - started

    vectors, explained = _reduce(hidden, recipe)
    _save_static(vectors, tokenizer_json, kept, recipe, out_dir, model_name or out_dir.name)
    stats = DistilStats(
        vocab_size=len(kept),
        dim=recipe.pca_dims,
        explained_variance=explained,
        forward_s=forward_s,
        total_s=time.perf_counter() - started,
    )
    logger.info(
        "distilled %d x %d (PCA kept %.1f%% of the variance) in %.1fs",
        stats.vocab_size,
        stats.dim,
        100 * stats.explained_variance,
        stats.total_s,
    )
    return stats
