"""Kura's summarisation module by name: SummaryModel and summarise_conversations.

A thin layer over api.summarise_conversations: the same stage, cache and input-aware
checkpoints as the rest of kura-stream, under Kura's names, arguments and defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kura_stream import api
from kura_stream.cache import Cache
from kura_stream.checkpoints import CheckpointStore
from kura_stream.kura_models import (
    DEFAULT_MODEL,
    build_summariser,
    concurrency,
    console_progress,
    resolve_llm,
    shared_embedder,
)
from kura_stream.protocols import Embedder, Summariser
from kura_stream.settings import Settings
from kura_stream.types import Conversation, ConversationSummary, Summary

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger(__name__)

__all__ = ["ConversationSummary", "SummaryModel", "summarise_conversations"]

DEFAULT_TEMPERATURE = 0.2
"""Kura's (and Clio's) sampling temperature for summaries."""


def _refuse_custom(prompt: str | None, response_schema: type[Any] | None) -> None:
    if prompt is not None or response_schema is not None:
        raise NotImplementedError(
            "custom prompt / response_schema are not supported: kura-stream's prompt is "
            "bounded (the conversation is cut to a token budget) and scrubbed; add fields "
            "with adapters.llm.LLMSummariser(facets=[FacetSpec(...)])"
        )


class SummaryModel:
    """Kura's SummaryModel: an LLM summariser where an endpoint is set, else the offline one.

    See kura_stream.kura_models for how `model` is resolved. Nothing is built until the
    first summary, so constructing one needs no key, no network and no model files.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_concurrent_requests: int = 50,
        checkpoint_filename: str = "summaries",
        console: Console | None = None,
        cache: Cache | None = None,
        *,
        embedding_model: Embedder | None = None,
        settings: Settings | None = None,
    ) -> None:
        """Create the model.

        Args:
            model: Kura's model string ("openai/gpt-4o-mini"), any model name the endpoint
                serves, or "offline".
            max_concurrent_requests: Summaries in flight at most (capped by the endpoint's
                KURA_LLM_CONCURRENCY).
            checkpoint_filename: Name of this stage's checkpoint.
            console: Draw a progress bar there.
            cache: Per-conversation cache (e.g. DiskCacheStrategy(cache_dir=...)).
            embedding_model: Embedder of the offline summariser (default: the shared one).
            settings: kura-stream settings (default: from KURA_* environment variables).
        """
        self.model = model
        self.max_concurrent_requests = max_concurrent_requests
        self._checkpoint_filename = checkpoint_filename
        self.console = console
        self.cache = cache
        self.settings = settings
        self._embedder = embedding_model
        self._summarisers: dict[float, Summariser] = {}

    @property
    def checkpoint_filename(self) -> str:
        """Name of this stage's checkpoint."""
        return self._checkpoint_filename

    @property
    def embedder(self) -> Embedder:
        """The embedder given, or the process's shared one."""
        if self._embedder is None:
            self._embedder = shared_embedder(self.settings)
        return self._embedder

    def summariser(self, temperature: float = DEFAULT_TEMPERATURE) -> Summariser:
        """The summariser this model stands for (built once per temperature)."""
        if temperature not in self._summarisers:
            llm = resolve_llm(self.model, self.settings)
            self._summarisers[temperature] = build_summariser(
                llm, embedder=self.embedder, temperature=temperature
            )
            logger.info("SummaryModel(%s): %s", self.model, self._summarisers[temperature].name)
        return self._summarisers[temperature]

    @property
    def concurrency(self) -> int:
        """Summaries in flight at once."""
        return concurrency(self.max_concurrent_requests, resolve_llm(self.model, self.settings))

    async def summarise(
        self,
        conversations: Sequence[Conversation],
        prompt: str | None = None,
        *,
        response_schema: type[Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> list[Summary]:
        """Kura's SummaryModel.summarise: the summaries, without checkpoints."""
        return await summarise_conversations(
            conversations,
            model=self,
            prompt=prompt,
            response_schema=response_schema,
            temperature=temperature,
        )


async def summarise_conversations(
    conversations: Sequence[Conversation],
    *,
    model: SummaryModel | Summariser,
    response_schema: type[Any] | None = None,
    prompt: str | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    checkpoint_manager: CheckpointStore | None = None,
    **kwargs: Any,
) -> list[Summary]:
    """Kura's summarise_conversations: Clio's facets of each conversation.

    Unlike Kura, the checkpoint is reused only for these very conversations and this model,
    and a conversation that cannot be summarised is logged and left out instead of failing
    the run.

    Args:
        conversations: The conversations.
        model: A SummaryModel, or any kura-stream Summariser.
        response_schema: Not supported (see NotImplementedError); None.
        prompt: Not supported; None.
        temperature: Sampling temperature of an LLM summariser.
        checkpoint_manager: Any checkpoint manager of kura_stream.checkpoints.
        **kwargs: Passed to api.summarise_conversations (cache, concurrency, progress,
            on_failure).

    Returns:
        The summaries, in input order.
    """
    _refuse_custom(prompt, response_schema)
    if not isinstance(model, SummaryModel):
        return await api.summarise_conversations(
            conversations, model=model, checkpoint_manager=checkpoint_manager, **kwargs
        )
    kwargs.setdefault("cache", model.cache)
    kwargs.setdefault("concurrency", model.concurrency)
    kwargs.setdefault("checkpoint_name", model.checkpoint_filename)
    with console_progress(model.console, "Summarising conversations") as progress:
        kwargs.setdefault("progress", progress)
        return await api.summarise_conversations(
            conversations,
            model=model.summariser(temperature),
            checkpoint_manager=checkpoint_manager,
            **kwargs,
        )
