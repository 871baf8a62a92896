"""Embedders: MiniLM on onnxruntime, a static model2vec model, any OpenAI-compatible endpoint."""

from __future__ import annotations

from kura_stream.adapters.embedders.common import (
    EmbedderError,
    EmbeddingDimensionError,
    ModelFilesMissingError,
)
from kura_stream.adapters.embedders.factory import make_embedder
from kura_stream.adapters.embedders.minilm import MiniLMEmbedder
from kura_stream.adapters.embedders.openai_embedder import OpenAIEmbedder
from kura_stream.adapters.embedders.static import StaticEmbedder

__all__ = [
    "EmbedderError",
    "EmbeddingDimensionError",
    "MiniLMEmbedder",
    "ModelFilesMissingError",
    "OpenAIEmbedder",
    "StaticEmbedder",
    "make_embedder",
]
