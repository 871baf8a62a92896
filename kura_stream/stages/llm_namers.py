"""LLMClusterNamer and LLMParentNamer: Clio's naming prompts, bounded whatever the cluster size."""

from __future__ import annotations

import difflib
import hashlib
import logging
import random
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import instructor
from pydantic import Field, field_validator

from kura_stream.privacy import scrub
from kura_stream.protocols import ClusterNamer
from kura_stream.stages.label_checks import name_problem
from kura_stream.stages.llm_calls import (
    LLMCallError,
    RetryPolicy,
    estimate_tokens,
    fit_items,
    shorten,
    structured_call,
)
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.prompts import (
    CLUSTER_VERSION,
    META_VERSION,
    CandidateNames,
    GeneratedLabel,
    _Answer,
    choose_messages,
    cluster_messages,
    propose_messages,
    reask_messages,
    rename_messages,
)
from kura_stream.types import SCHEMA_VERSION, ClusterLabel, Summary

logger = logging.getLogger(__name__)

_MAX_NAME_WORDS = 12


class NamingError(Exception):
    """A naming call failed for good; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_name(text: str) -> str:
    """A name on one line: no quotes, tags or trailing period, at most twelve words, scrubbed."""
    line = " ".join(re.sub(r"</?\w+>", " ", text).split()).strip(" \"'`*.")
    words = line.split()
    if len(words) > _MAX_NAME_WORDS:
        line = " ".join(words[:_MAX_NAME_WORDS])
    return scrub(line)


def clean_slug(slug: str, name: str) -> str:
    """Three lowercase words in snake_case, from the model's slug or else from the name."""
    words = re.findall(r"[a-z0-9]+", slug.lower()) or re.findall(r"[a-z0-9]+", name.lower())
    return "_".join(words[:3])


def to_label(out: GeneratedLabel) -> ClusterLabel:
    """A ClusterLabel from the model's answer, every text scrubbed."""
    name = clean_name(out.name)
    if not name:
        raise NamingError("empty name")
    return ClusterLabel(
        name=name,
        description=scrub(" ".join(out.summary.split())),
        slug=scrub(clean_slug(out.slug, name)),
    )


def statement(summary: Summary, max_tokens: int) -> str:
    """What a namer shows of one conversation: its summary (else request), shortened."""
    return shorten(summary.summary or summary.request or "", max_tokens)


def _child_text(child: ClusterLabel, max_tokens: int) -> str:
    text = f"{child.name}: {child.description}" if child.description else child.name
    return shorten(text, max_tokens)


class _LLMNamer:
    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_prompt_tokens: int,
        max_item_tokens: int,
        max_output_tokens: int,
        temperature: float,
        retry: RetryPolicy | None,
    ) -> None:
        if max_prompt_tokens < 200 or max_item_tokens < 8:
            raise ValueError("max_prompt_tokens must be >= 200 and max_item_tokens >= 8")
        self._client = client
        self.model = model
        self.max_prompt_tokens = max_prompt_tokens
        self.max_item_tokens = max_item_tokens
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.retry = retry or RetryPolicy()

    async def _ask(self, model: type[Any], messages: list[dict[str, str]], what: str) -> Any:
        try:
            return await structured_call(
                self._client,
                model,
                messages,
                model=self.model,
                policy=self.retry,
                temperature=self.temperature,
                max_tokens=self.max_output_tokens,
                what=what,
            )
        except LLMCallError as exc:
            raise NamingError(exc.reason) from exc


class LLMClusterNamer(_LLMNamer):
    """Implements ClusterNamer with Clio's contrastive prompt (Kura's cluster.py).

    The prompt is bounded twice over: each statement is cut to `max_item_tokens`, and the
    statements shown stop at a budget (`max_prompt_tokens` less the instructions), 60% for
    members and 40% for contrast, whatever the caller passes in. A name longer than ten
    words or generic ("Miscellaneous", "General questions") is re-asked once with the
    reason; if the second is no better, the fallback namer (offline) names the cluster.
    """

    INSTRUCTION_TOKENS: ClassVar[int] = 700
    """Estimated tokens of the instructions and the tool schema, outside the examples."""

    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_members: int = 50,
        max_contrast: int = 50,
        max_prompt_tokens: int = 3000,
        max_item_tokens: int = 60,
        max_output_tokens: int = 300,
        temperature: float = 0.2,
        retry: RetryPolicy | None = None,
        fallback: ClusterNamer | None = None,
    ) -> None:
        """Create the namer.

        Args:
            client: An async instructor client.
            model: Model name sent with each request; part of `name`.
            max_members: Members shown at most (Clio: 50).
            max_contrast: Nearest non-members shown at most (Clio: 50).
            max_prompt_tokens: Budget of the whole prompt, estimated tokens; keep it under
                the model's context less max_output_tokens.
            max_item_tokens: Each statement is cut to this many tokens.
            max_output_tokens: Ceiling on generated tokens.
            temperature: Sampling temperature.
            retry: Retry policy.
            fallback: Names a cluster whose name is still too long or generic after one
                re-ask (default: the OfflineClusterNamer).
        """
        super().__init__(
            client,
            model=model,
            max_prompt_tokens=max_prompt_tokens,
            max_item_tokens=max_item_tokens,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            retry=retry,
        )
        self.max_members = max_members
        self.max_contrast = max_contrast
        self.fallback = fallback if fallback is not None else OfflineClusterNamer()

    @property
    def name(self) -> str:
        """llm:<model>:<prompt version>:<bounds>:s<schema version>+<fallback namer>."""
        bounds = f"{self.max_members}+{self.max_contrast}x{self.max_item_tokens}"
        own = f"llm:{self.model}:{CLUSTER_VERSION}:{bounds}:s{SCHEMA_VERSION}"
        return f"{own}+{self.fallback.name}"

    def build_messages(
        self, members: Sequence[Summary], contrast: Sequence[Summary]
    ) -> list[dict[str, str]]:
        """The bounded prompt for one cluster (first members and contrast are kept first)."""
        budget = max(100, self.max_prompt_tokens - self.INSTRUCTION_TOKENS)
        shown = fit_items(
            [statement(s, self.max_item_tokens) for s in members[: self.max_members]],
            budget * 3 // 5 if contrast else budget,
        )
        left = budget - sum(estimate_tokens(s) + 1 for s in shown)
        others = fit_items(
            [statement(s, self.max_item_tokens) for s in contrast[: self.max_contrast]], left
        )
        return cluster_messages(shown, others)

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        """Name the group `members`, distinguishing it from `contrast`.

        Raises:
            NamingError: no valid answer after retries.
            ValueError: members is empty.
        """
        if not members:
            raise ValueError("cannot name an empty group")
        messages = self.build_messages(members, contrast)
        out: GeneratedLabel = await self._ask(GeneratedLabel, messages, "cluster name")
        label = to_label(out)
        problem = name_problem(label.name)
        if problem is None:
            return label
        logger.info("cluster name %r refused (%s); asking again", label.name, problem)
        again = reask_messages(messages, out.model_dump_json(), label.name, problem)
        try:
            label = to_label(await self._ask(GeneratedLabel, again, "cluster name, re-asked"))
            problem = name_problem(label.name)
        except NamingError as exc:
            problem = exc.reason
        if problem is None:
            return label
        logger.warning("cluster name refused again (%s); using %s", problem, self.fallback.name)
        return await self.fallback.label(members, contrast)


class _Choice(_Answer):
    """The chosen higher-level cluster."""

    # Validated against the candidates offered (set on a subclass per call); the docstring
    # goes into the schema the model sees.

    candidates: ClassVar[tuple[str, ...]] = ()
    higher_level_cluster: str = Field(description="Exactly one of the listed names.")

    @field_validator("higher_level_cluster")
    @classmethod
    def _among_candidates(cls, v: str) -> str:
        found = match_candidate(v, cls.candidates)
        if found is None:
            listed = "; ".join(cls.candidates)
            raise ValueError(f"{v!r} is not one of the listed clusters: {listed}")
        return found


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def match_candidate(answer: str, candidates: Sequence[str]) -> str | None:
    """The candidate an answer names, or None.

    Tried in order: exact; ignoring case and punctuation; a 1-based number; a close spelling
    (difflib ratio >= 0.9, as Kura's fuzzy match).
    """
    text = answer.strip()
    if text in candidates:
        return text
    norm = {_norm(c): c for c in candidates}
    if _norm(text) in norm:
        return norm[_norm(text)]
    if text.rstrip(".").isdigit() and 1 <= int(text.rstrip(".")) <= len(candidates):
        return candidates[int(text.rstrip(".")) - 1]
    close = difflib.get_close_matches(_norm(text), list(norm), n=1, cutoff=0.9)
    return norm[close[0]] if close else None


class LLMParentNamer(_LLMNamer):
    """Implements ParentNamer with Clio's meta-clustering prompts (Kura's meta_cluster.py).

    Children are shown as "name: description", each cut to `max_item_tokens`, as many as fit
    `max_prompt_tokens` (largest first is the caller's order). Candidates are offered in a
    shuffled order (Clio: avoids a bias to the first), seeded by the child so runs repeat.
    """

    INSTRUCTION_TOKENS: ClassVar[int] = 600

    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_children: int = 40,
        max_prompt_tokens: int = 3000,
        max_item_tokens: int = 50,
        max_output_tokens: int = 400,
        temperature: float = 0.2,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Create the namer.

        Args:
            client: An async instructor client.
            model: Model name sent with each request; part of `name`.
            max_children: Children shown at most per prompt (Clio's neighbourhoods: ~40).
            max_prompt_tokens: Budget of the whole prompt, estimated tokens.
            max_item_tokens: Each child's "name: description" is cut to this many tokens.
            max_output_tokens: Ceiling on generated tokens.
            temperature: Sampling temperature.
            retry: Retry policy.
        """
        super().__init__(
            client,
            model=model,
            max_prompt_tokens=max_prompt_tokens,
            max_item_tokens=max_item_tokens,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            retry=retry,
        )
        self.max_children = max_children

    @property
    def name(self) -> str:
        """llm:<model>:<prompt version>:<bounds>:s<schema version>."""
        bounds = f"{self.max_children}x{self.max_item_tokens}"
        return f"llm:{self.model}:{META_VERSION}:{bounds}:s{SCHEMA_VERSION}"

    def _children(self, children: Sequence[ClusterLabel]) -> list[str]:
        texts = [_child_text(c, self.max_item_tokens) for c in children[: self.max_children]]
        return fit_items(texts, max(100, self.max_prompt_tokens - self.INSTRUCTION_TOKENS))

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        """Candidate parent names for a neighbourhood: between desired/2 and 1.5 x desired.

        Raises:
            NamingError: no valid answer after retries.
        """
        desired = max(1, desired)
        messages = propose_messages(self._children(children), desired)
        out: CandidateNames = await self._ask(CandidateNames, messages, "parent proposals")
        names: dict[str, str] = {}
        for raw in out.candidate_cluster_names:
            name = clean_name(raw)
            if name and _norm(name) not in names:
                names[_norm(name)] = name
        if not names:
            raise NamingError("no usable candidate names")
        return list(names.values())[: max(1, (3 * desired) // 2)]

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        """The candidate that best fits child, returned exactly as given.

        Raises:
            NamingError: no valid answer after retries (an answer not among the candidates is
                re-asked with the list).
            ValueError: candidates is empty.
        """
        if not candidates:
            raise ValueError("no candidates to choose from")
        offered = list(dict.fromkeys(candidates))
        seed = hashlib.sha256(child.name.encode()).digest()
        random.Random(seed).shuffle(offered)
        model = type("ParentChoice", (_Choice,), {"candidates": tuple(offered)})
        messages = choose_messages(_child_text(child, self.max_item_tokens * 2), offered)
        out: _Choice = await self._ask(model, messages, f"parent of {child.name!r}")
        return out.higher_level_cluster

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        """A name and description for a parent, from the children it received.

        Raises:
            NamingError: no valid answer after retries.
            ValueError: children is empty.
        """
        if not children:
            raise ValueError("a parent needs children")
        messages = rename_messages(self._children(children))
        out: GeneratedLabel = await self._ask(GeneratedLabel, messages, "parent name")
        return to_label(out)
