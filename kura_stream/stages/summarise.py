"""The summarise stage, and Clio's facet extraction as pure steps: prompt in, Summary out."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kura_stream.cache import Cache, make_key
from kura_stream.errors import EndpointUnavailableError
from kura_stream.privacy import scrub
from kura_stream.protocols import BoundsOwnCalls, Summariser
from kura_stream.stages.prompts import ClioFacets, FacetSpec, SummaryPrompt
from kura_stream.stages.token_budget import cut_end, cut_start, estimate_tokens
from kura_stream.types import SCHEMA_VERSION, Conversation, DeadLetter, MetadataValue, Summary

logger = logging.getLogger(__name__)

CACHE_NAMESPACE = "summary"
_NO_ERROR = re.compile(r"(?i)^(?:none|n/?a|nothing|no(?:ne)?\b.*errors?.*|-)\W*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


class SummaryError(Exception):
    """A conversation could not be summarised (after retries); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render_conversation(conversation: Conversation, max_tokens: int) -> tuple[str, bool]:
    """The conversation as <message> lines, cut to max_tokens keeping its start and its end.

    The start holds the user's request, the end how it turned out (errors, frustration), so
    60% of the budget goes to the start and the rest to the end, with a marker between.

    Args:
        conversation: The (scrubbed) conversation.
        max_tokens: Budget in estimated tokens (see estimate_tokens).

    Returns:
        The rendered text and whether anything was cut.
    """
    text = "\n".join(f"<message>{m.role}: {m.content}</message>" for m in conversation.messages)
    total = estimate_tokens(text)
    if total <= max_tokens:
        return text, False
    budget = max(2, max_tokens - 16)
    head = cut_start(text, budget * 3 // 5)
    tail = cut_end(text, budget - estimate_tokens(head))
    omitted = max(0, total - estimate_tokens(head) - estimate_tokens(tail))
    return f"{head}\n[... about {omitted} tokens omitted ...]\n{tail}", True


def first_sentences(text: str, n: int = 2, max_chars: int = 400) -> str:
    """The first n sentences of text on one line, at most max_chars."""
    line = " ".join(text.split())
    line = " ".join(_SENTENCE_END.split(line)[:n])
    return line if len(line) <= max_chars else line[: max_chars - 3].rsplit(" ", 1)[0] + "..."


def _clean(text: str, max_chars: int = 300) -> str | None:
    line = scrub(" ".join(text.split()))
    if len(line) > max_chars:
        line = line[: max_chars - 3].rsplit(" ", 1)[0] + "..."
    return line or None


def _scrub_facet(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub(v) if isinstance(v, str) else v for v in value]
    return value


def summariser_name(
    model: str,
    prompt: SummaryPrompt,
    facets: Sequence[FacetSpec],
    max_conversation_tokens: int,
    temperature: float,
) -> str:
    """An LLM summariser's identity, part of every cache key of its summaries.

    Returns:
        llm:<model>:<prompt version>-<digest of prompt, facets, budget>:s<schema version>.
    """
    identity = json.dumps(
        [
            prompt.system,
            prompt.instructions,
            [f.model_dump() for f in facets],
            max_conversation_tokens,
            temperature,
        ]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"llm:{model}:{prompt.version}-{digest}:s{SCHEMA_VERSION}"


def summary_messages(
    conversation: Conversation,
    *,
    prompt: SummaryPrompt,
    facets: Sequence[FacetSpec],
    max_conversation_tokens: int,
) -> list[dict[str, str]]:
    """The chat messages for an already scrubbed conversation (bounded by the budget)."""
    rendered, cut = render_conversation(conversation, max_conversation_tokens)
    return prompt.messages(rendered, cut=cut, facets=facets)


def to_summary(
    out: ClioFacets, clean: Conversation, *, facets: Sequence[FacetSpec], summariser: str
) -> Summary:
    """A Summary from the model's answer about a scrubbed conversation, every text scrubbed.

    Args:
        out: The validated answer (ClioFacets, with the extra facets as fields).
        clean: The scrubbed conversation the answer is about.
        facets: The extra facets asked for; their answers land in Summary.facets.
        summariser: The summariser's name, recorded on the summary.
    """
    languages = dict.fromkeys(
        s for s in (" ".join(lang.lower().split()) for lang in out.languages) if s
    )
    errors = [e for e in (_clean(x) for x in out.assistant_errors) if e]
    return Summary(
        chat_id=clean.chat_id,
        summary=scrub(first_sentences(out.summary)) or "(no summary)",
        request=_clean(out.request),
        task=_clean(out.task),
        topic=_clean(out.topic, 120),
        languages=tuple(list(languages)[:10]),
        concerning_score=out.concerning_score,
        user_frustration=out.user_frustration,
        assistant_errors=tuple(e for e in errors if not _NO_ERROR.match(e))[:10],
        facets={f.name: _scrub_facet(getattr(out, f.name)) for f in facets},
        metadata=dict(clean.metadata),
        summariser=summariser,
    )


@dataclass(frozen=True)
class SummariseResult:
    """The outcome of summarising a batch, both in input order.

    Attributes:
        summaries: The conversations summarised (from the cache or the summariser).
        failures: (chat_id, reason) of every conversation that could not be summarised.
        cache_hits: How many summaries came from the cache.
    """

    summaries: list[Summary] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0


def conversation_content(conversation: Conversation) -> str:
    """What a summary depends on: the messages' roles and texts (not ids, times or metadata)."""
    pairs = [[m.role, m.content] for m in conversation.messages]
    return json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))


def summary_cache_key(conversation: Conversation, summariser: Summariser) -> str:
    """The cache key of a conversation's summary: content hash + summariser identity."""
    return make_key(CACHE_NAMESPACE, conversation_content(conversation), producer=summariser.name)


def _scrubbed_metadata(conversation: Conversation) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for k, v in conversation.metadata.items():
        out[k] = _scrub_facet(v)
    return out


def _for(summary: Summary, conversation: Conversation) -> Summary:
    """A summary of the same content, re-addressed to this conversation and its metadata."""
    if summary.chat_id == conversation.chat_id and summary.metadata == conversation.metadata:
        return summary
    update = {"chat_id": conversation.chat_id, "metadata": _scrubbed_metadata(conversation)}
    return summary.model_copy(update=update)


def dead_letter(conversation: Conversation, reason: str) -> DeadLetter:
    """A dead letter for a conversation the stage could not summarise."""
    return DeadLetter.from_record(
        conversation.model_dump_json().encode(),
        reason=reason,
        stage="summarise",
        key=conversation.chat_id,
    )


def summarise_window(summariser: Summariser, concurrency: int) -> int:
    """Conversations to summarise at once: `concurrency`, or more when the summariser bounds.

    An LLM summariser with slots bounds its own calls: a conversation backing off between
    attempts, or being rendered, holds no call slot, so more are kept ready to fill it.
    """
    if isinstance(summariser, BoundsOwnCalls):
        return max(concurrency, summariser.call_window or 0)
    return concurrency


async def summarise(
    conversations: Sequence[Conversation],
    *,
    summariser: Summariser,
    cache: Cache | None = None,
    concurrency: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> SummariseResult:
    """Summarise conversations, reading and filling the cache, with bounded concurrency.

    Conversations with the same messages are summarised once. Every conversation ends up in
    exactly one of `summaries` or `failures`: a SummaryError keeps its reason, any other
    exception is logged and kept as "<type>: <message>".

    Args:
        conversations: The conversations, in any number.
        summariser: The Summariser (LLM or offline).
        cache: Where summaries are kept across runs (key: content hash + summariser.name).
        concurrency: At most this many summariser calls at once (see summarise_window).
        progress: Called as progress(done, total) after each conversation is settled.

    Returns:
        Summaries and failures, each in input order.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    keys = [summary_cache_key(c, summariser) for c in conversations]
    outcome = _from_cache(keys, conversations, cache)
    hits = sum(1 for k in keys if k in outcome)
    settled = _Progress(progress, total=len(conversations))
    if hits:
        settled.add(hits)
    semaphore = asyncio.Semaphore(summarise_window(summariser, concurrency))
    copies = collections.Counter(keys)

    async def run(key: str, conv: Conversation) -> None:
        async with semaphore:
            outcome[key] = await _summarise_one(conv, key, summariser=summariser, cache=cache)
        settled.add(copies[key])

    todo = _first_of_each(keys, conversations, skip=outcome)
    await asyncio.gather(*(run(k, c) for k, c in todo.items()))
    return _result(keys, conversations, outcome, cache_hits=hits)


def _from_cache(
    keys: Sequence[str], conversations: Sequence[Conversation], cache: Cache | None
) -> dict[str, Summary | str]:
    """Cache key -> the cached summary, re-addressed to the first conversation with that key."""
    cached = cache.get_many_json(keys) if cache is not None else {}
    outcome: dict[str, Summary | str] = {}
    for key, conv in zip(keys, conversations, strict=True):
        value = cached.get(key)
        if isinstance(value, dict) and key not in outcome:
            try:
                outcome[key] = Summary.model_validate({**value, "chat_id": conv.chat_id})
            except ValidationError:
                logger.warning("cached summary %s does not validate; recomputed", key[:12])
    return outcome


@dataclass
class _Progress:
    """Conversations settled so far, reported as report(done, total) after each step."""

    report: Callable[[int, int], None] | None
    total: int
    done: int = 0

    def add(self, settled: int) -> None:
        """Count `settled` more conversations and report."""
        self.done += settled
        if self.report is not None:
            self.report(self.done, self.total)


async def _summarise_one(
    conv: Conversation, key: str, *, summariser: Summariser, cache: Cache | None
) -> Summary | str:
    """The conversation's summary (cached under `key`), or why it could not be made."""
    try:
        summary = await summariser.summarise(conv)
    except (SummaryError, EndpointUnavailableError) as exc:
        return exc.reason
    except Exception as exc:  # a stream goes on: the failure is kept as data
        logger.exception("summariser %s crashed on %s", summariser.name, conv.chat_id)
        return f"{type(exc).__name__}: {exc}"
    if cache is not None:
        value = summary.model_dump(mode="json", exclude={"chat_id", "metadata"})
        cache.set_json(key, value, namespace=CACHE_NAMESPACE)
    return summary


def _first_of_each(
    keys: Sequence[str], conversations: Sequence[Conversation], *, skip: Collection[str]
) -> dict[str, Conversation]:
    """Key -> the first conversation with that key, for the keys not in `skip`."""
    todo: dict[str, Conversation] = {}
    for key, conv in zip(keys, conversations, strict=True):
        if key not in skip and key not in todo:
            todo[key] = conv
    return todo


def _result(
    keys: Sequence[str],
    conversations: Sequence[Conversation],
    outcome: dict[str, Summary | str],
    *,
    cache_hits: int,
) -> SummariseResult:
    """Each conversation's outcome, in input order, its summary re-addressed to it."""
    result = SummariseResult(cache_hits=cache_hits)
    for key, conv in zip(keys, conversations, strict=True):
        got = outcome[key]
        if isinstance(got, Summary):
            result.summaries.append(_for(got, conv))
        else:
            result.failures.append((conv.chat_id, got))
    if result.failures:
        logger.warning(
            "%d of %d conversations not summarised", len(result.failures), len(conversations)
        )
    return result
