"""Structured LLM output: an instructor client over any OpenAI-compatible endpoint."""

from __future__ import annotations

import logging

import instructor
import openai

from kura_stream.settings import LLMSettings

logger = logging.getLogger(__name__)

SUPPORTED_MODES = (instructor.Mode.TOOLS, instructor.Mode.JSON, instructor.Mode.MD_JSON)
"""Modes that the local llama.cpp server accepts. TOOLS (the default) turns the schema into a
grammar; JSON (response_format json_object) is the fallback that held up on the 0.5B model;
MD_JSON is accepted but the 0.5B model mostly echoes the schema back. JSON_SCHEMA gets HTTP 500
there (the server takes only response_format text or json_object)."""

DEFAULT_MAX_TOKENS = 512
"""Output cap bound to every call: a grammar-constrained generation that goes astray otherwise
runs on to the end of the context (measured: 3,651 tokens at 5 tokens/s, 12 minutes)."""


def make_instructor_client(
    settings: LLMSettings,
    *,
    mode: instructor.Mode | str = instructor.Mode.TOOLS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> instructor.AsyncInstructor:
    """An async instructor client for the endpoint and model in settings.

    The OpenAI client does not retry (max_retries=0): instructor's `max_retries` per call, and
    the callers above it, decide about retries, so a failure is not retried twice over. The
    model name and max_tokens are bound to the client as defaults (a call may override them),
    so callers pass only response_model, messages and max_retries.

    Args:
        settings: The LLM section of Settings (base URL, model, key, timeout).
        mode: How instructor asks for structure: an instructor.Mode or its value
            ("tool_call", "json_mode", "markdown_json_mode").
        max_tokens: Default cap on generated tokens per call.

    Returns:
        A client whose `chat.completions.create(response_model=..., messages=...,
        max_retries=...)` returns a validated instance of response_model.

    Raises:
        ValueError: mode is not an instructor mode.
    """
    mode = instructor.Mode(mode)
    if mode not in SUPPORTED_MODES:
        logger.warning("instructor mode %s is untested against the local llama.cpp server", mode)
    client = openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key.get_secret_value(),
        timeout=settings.timeout_s,
        max_retries=0,
    )
    return instructor.from_openai(client, mode=mode, model=settings.model, max_tokens=max_tokens)
