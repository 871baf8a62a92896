"""The LLM adapter: the instructor/openai client, retried structured calls, summariser, namers."""

from __future__ import annotations

from kura_stream.adapters.llm.calls import LLMCallError, RetryPolicy, structured_call
from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm.namers import LLMClusterNamer, LLMParentNamer
from kura_stream.adapters.llm.summariser import LLMSummariser

__all__ = [
    "LLMCallError",
    "LLMClusterNamer",
    "LLMParentNamer",
    "LLMSummariser",
    "RetryPolicy",
    "make_instructor_client",
    "structured_call",
]
