"""all-MiniLM-L6-v2 on onnxruntime: the same vectors as SentenceTransformer, without torch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from kura_stream.adapters.embedders.common import (
    FETCH_HINT,
    ModelFilesMissingError,
    Vectors,
    empty,
    l2_normalise,
)

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
"""The ONNX graph's file name inside a MiniLM model folder."""
TOKENIZER_FILE = "tokenizer.json"
"""The tokenizer's file name inside a MiniLM model folder."""
MAX_SEQ_LENGTH = 256
"""Word pieces per text, [CLS] and [SEP] included: sentence-transformers' max_seq_length."""
DIM = 384
"""Width of the model's hidden state, and so of its vectors."""
PAD_ID = 0
"""[PAD] in the BERT uncased vocabulary."""
MAX_BATCH_TOKENS = 512
"""Padded word pieces per forward pass: 64 texts of 8, 16 of 32, 2 of 256 (see MiniLMEmbedder)."""


def make_session(onnx_path: Path, *, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session for a MiniLM graph.

    Args:
        onnx_path: The .onnx file.
        threads: intra-op threads (one was fastest beside another busy process).

    Returns:
        The session; its one output is last_hidden_state (batch, seq, 384).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def hidden_states(
    session: ort.InferenceSession,
    input_ids: npt.NDArray[np.int64],
    attention_mask: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """The last hidden state of a padded batch (token type ids all zero: one segment).

    Args:
        session: A session from make_session.
        input_ids: (batch, seq) word-piece ids.
        attention_mask: (batch, seq), 1 for real tokens and 0 for padding.

    Returns:
        (batch, seq, 384) float32.
    """
    feeds = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": np.zeros_like(input_ids),
    }
    out = session.run(["last_hidden_state"], feeds)[0]
    return np.asarray(out, dtype=np.float32)


def mean_pool(
    hidden: npt.NDArray[np.float32], attention_mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """sentence-transformers' mean pooling: the average of the unmasked tokens' states."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (hidden * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    pooled: npt.NDArray[np.float32] = (summed / counts).astype(np.float32)
    return pooled


def load_tokenizer(path: Path, *, max_length: int = MAX_SEQ_LENGTH) -> Tokenizer:
    """The BERT word-piece tokenizer, truncating as sentence-transformers does and not padding.

    The file's own settings (truncation at 128, padding to 128) are replaced: truncation at
    max_length word pieces including [CLS] and [SEP], and padding done per batch by the caller.
    """
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (fp32 ONNX) with mean pooling and L2 normalisation.

    Texts are tokenised in one call, sorted by length so each batch pads little, run in
    batches of at most batch_size texts and max_batch_tokens padded word pieces, and put back
    in input order. The token cap matters for long texts: one 256-piece text no longer pads
    63 short ones to 256, and a batch's activations stay small enough for the CPU caches. On
    ShareGPT openings (about 50 pieces, up to 256) caps of 256/512/1024/2048/16384 pieces
    gave about 110/130/115/90/57 texts/s on one thread; short texts were fastest at 256-512.
    """

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        *,
        threads: int = 1,
        batch_size: int = 64,
        max_seq_length: int = MAX_SEQ_LENGTH,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        """Load the graph and the tokenizer.

        Args:
            onnx_path: The all-MiniLM-L6-v2 .onnx file (inputs input_ids, attention_mask,
                token_type_ids; output last_hidden_state).
            tokenizer_path: Its tokenizer.json.
            threads: onnxruntime intra-op threads.
            batch_size: Most texts per forward pass.
            max_seq_length: Word pieces per text, special tokens included.
            max_batch_tokens: Most padded word pieces per forward pass (at least one text).

        Raises:
            ModelFilesMissingError: a file is missing.
            ValueError: batch_size or threads is below 1.
        """
        for path in (onnx_path, tokenizer_path):
            if not path.is_file():
                raise ModelFilesMissingError(f"MiniLM model file {path} is missing: {FETCH_HINT}")
        if batch_size < 1 or threads < 1:
            raise ValueError(f"batch_size and threads must be >= 1, not {batch_size}/{threads}")
        self._batch_size = batch_size
        self._max_batch_tokens = max_batch_tokens
        self._max_seq_length = max_seq_length
        self._tokenizer = load_tokenizer(tokenizer_path, max_length=max_seq_length)
        self._session = make_session(onnx_path, threads=threads)
        # One forward pass at a time, so the model uses the threads it was given, however
        # many consumers embed at once.
        self._lock = threading.Lock()
        logger.debug("loaded MiniLM from %s (%d threads)", onnx_path, threads)

    @classmethod
    def from_dir(cls, folder: Path, *, threads: int = 1, batch_size: int = 64) -> MiniLMEmbedder:
        """Load model.onnx and tokenizer.json from a model folder (see model_files).

        Raises:
            ModelFilesMissingError: the folder or a file in it is missing.
        """
        return cls(
            folder / ONNX_FILE, folder / TOKENIZER_FILE, threads=threads, batch_size=batch_size
        )

    @property
    def name(self) -> str:
        """Model, variant (fp32 ONNX, truncation) and width: a cache-key identity."""
        return f"all-MiniLM-L6-v2/onnx-fp32-seq{self._max_seq_length}/d{DIM}"

    @property
    def dim(self) -> int:
        """384."""
        return DIM

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (see the Embedder protocol); any number, of any length.

        Returns:
            (len(texts), 384) float32 rows of unit length, in input order.
        """
        if not texts:
            return empty(DIM)
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Vectors:
        encodings: list[Encoding] = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        # Longest first, ties in input order: each batch pads to its first text's length.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            size = min(self._batch_size, max(1, self._max_batch_tokens // width))
            rows = order[start : start + size]
            start += size
            ids = np.full((len(rows), width), PAD_ID, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                n = int(lengths[row])
                ids[i, :n] = encodings[row].ids
                mask[i, :n] = 1
            out[rows] = mean_pool(hidden_states(self._session, ids, mask), mask)
        return l2_normalise(out)
