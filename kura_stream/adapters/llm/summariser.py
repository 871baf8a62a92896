"""LLMSummariser: Clio's facet extraction asked of an OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import instructor

from kura_stream.adapters.llm.calls import CallSlots, LLMCallError, RetryPolicy, structured_call
from kura_stream.errors import EndpointUnavailableError
from kura_stream.privacy import scrub_conversation
from kura_stream.settings import LLMSettings
from kura_stream.stages.prompts import FacetSpec, SummaryPrompt, response_model
from kura_stream.stages.summarise import (
    SummaryError,
    summariser_name,
    summary_messages,
    to_summary,
)
from kura_stream.types import Conversation, Summary


class LLMSummariser:
    """Implements Summariser with an LLM through instructor (Clio's extraction prompt).

    The conversation is scrubbed of personal data before it is rendered, cut to a token
    budget (start and end kept), and every text the model returns is scrubbed again.
    """

    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        prompt: SummaryPrompt | None = None,
        facets: Sequence[FacetSpec] = (),
        max_conversation_tokens: int = 2500,
        max_output_tokens: int = 400,
        temperature: float = 0.2,
        retry: RetryPolicy | None = None,
        slots: CallSlots | None = None,
    ) -> None:
        """Create the summariser.

        Args:
            client: An async instructor client (Mode.TOOLS or MD_JSON).
            model: Model name sent with each request; part of `name`.
            prompt: The prompt's texts and version.
            facets: Extra facets to extract; their answers land in Summary.facets.
            max_conversation_tokens: Budget of the rendered conversation (estimated tokens).
            max_output_tokens: Ceiling on generated tokens per call.
            temperature: Sampling temperature (Clio: 0.2).
            retry: Retry policy; the default re-asks twice and tries transport failures 4x.
            slots: Bounds this summariser's calls in flight, one attempt at a time (a call
                backing off holds none); None: the caller bounds its summarise calls.
        """
        names = [f.name for f in facets]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate facet names: {names}")
        if max_conversation_tokens < 64:
            raise ValueError("max_conversation_tokens must be at least 64")
        self._client = client
        self.model = model
        self.prompt = prompt or SummaryPrompt()
        self.facets = tuple(facets)
        self.max_conversation_tokens = max_conversation_tokens
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.retry = retry or RetryPolicy()
        self.slots = slots
        self._response_model = response_model(self.facets)
        self._name = summariser_name(
            model, self.prompt, self.facets, max_conversation_tokens, temperature
        )

    @classmethod
    def from_settings(
        cls,
        client: instructor.AsyncInstructor,
        settings: LLMSettings,
        *,
        facets: Sequence[FacetSpec] = (),
        max_conversation_tokens: int = 2500,
    ) -> LLMSummariser:
        """A summariser for settings.model, with settings.concurrency slots for its calls.

        Its retries follow settings.max_retries; CallSlots keep settings.concurrency calls in
        flight at most, whoever calls it.
        """
        retry = RetryPolicy(
            validation_retries=settings.max_retries, attempts=settings.max_retries + 1
        )
        return cls(
            client,
            model=settings.model,
            facets=facets,
            max_conversation_tokens=max_conversation_tokens,
            retry=retry,
            slots=CallSlots(settings.concurrency),
        )

    @property
    def call_window(self) -> int | None:
        """Conversations worth summarising at once when this summariser bounds its own calls.

        Twice its slots and a few: calls backing off, being rendered or turned into summaries
        hold no slot, and the next ones are queued, so the endpoint never waits on them.
        None: no slots, so the caller's concurrency is the bound.
        """
        return None if self.slots is None else 2 * self.slots.limit + 4

    @property
    def name(self) -> str:
        """llm:<model>:<prompt version>-<digest of prompt, facets, budget>:s<schema version>."""
        return self._name

    def build_messages(self, conversation: Conversation) -> list[dict[str, str]]:
        """The chat messages for an already scrubbed conversation (bounded by the budget)."""
        return summary_messages(
            conversation,
            prompt=self.prompt,
            facets=self.facets,
            max_conversation_tokens=self.max_conversation_tokens,
        )

    async def summarise(self, conversation: Conversation) -> Summary:
        """Summarise one conversation.

        Raises:
            SummaryError: no valid answer after retries; `reason` says why.
            EndpointUnavailableError: the endpoint did not answer after retries (the
                conversation is not at fault: a stream redelivers it later).
        """
        clean = scrub_conversation(conversation)
        try:
            out = await structured_call(
                self._client,
                self._response_model,
                self.build_messages(clean),
                model=self.model,
                policy=self.retry,
                temperature=self.temperature,
                max_tokens=self.max_output_tokens,
                what=f"summary of {conversation.chat_id}",
                slots=self.slots,
            )
        except LLMCallError as exc:
            if exc.unavailable:
                raise EndpointUnavailableError(exc.reason) from exc
            raise SummaryError(exc.reason) from exc
        return to_summary(out, clean, facets=self.facets, summariser=self.name)
