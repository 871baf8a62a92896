"""The one place that turns EmbedderSettings into an Embedder."""

from __future__ import annotations

import logging

from kura_stream.adapters.embedders.common import minilm_dir, static_dir
from kura_stream.adapters.embedders.minilm import MiniLMEmbedder
from kura_stream.adapters.embedders.openai_embedder import OpenAIEmbedder
from kura_stream.adapters.embedders.static import StaticEmbedder
from kura_stream.protocols import Embedder
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder that settings.embedder.kind names.

    minilm and static load from settings.embedder.models_dir; openai talks to
    openai_base_url (default: the LLM base URL) with openai_api_key (default: the LLM key).

    Args:
        settings: The project settings.

    Returns:
        A ready embedder (model files loaded; no request made for openai).

    Raises:
        ModelFilesMissingError: a local model's files are missing; the message says to run
            `kura-stream models fetch`.
    """
    config = settings.embedder
    if config.kind == "minilm":
        return MiniLMEmbedder.from_dir(
            minilm_dir(config.models_dir), threads=config.threads, batch_size=config.batch_size
        )
    if config.kind == "static":
        return StaticEmbedder(static_dir(config.models_dir))
    base_url = config.openai_base_url or settings.llm.base_url
    logger.info("embedding with %s at %s", config.openai_model, base_url)
    return OpenAIEmbedder(
        base_url=base_url,
        model=config.openai_model,
        api_key=config.openai_api_key or settings.llm.api_key,
        batch_size=config.batch_size,
        timeout_s=settings.llm.timeout_s,
        max_retries=settings.llm.max_retries,
    )
