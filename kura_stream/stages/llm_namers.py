"""The LLM namers' pure parts: Clio's naming prompts bounded to a budget, answers to labels."""

from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field, field_validator

from kura_stream.privacy import scrub
from kura_stream.stages.prompts import (
    CandidateNames,
    GeneratedLabel,
    _Answer,
    choose_messages,
    cluster_messages,
)
from kura_stream.stages.token_budget import estimate_tokens, fit_items, shorten
from kura_stream.types import ClusterLabel, Summary

_MAX_NAME_WORDS = 12

CLUSTER_INSTRUCTION_TOKENS = 700
"""Estimated tokens of the cluster prompt's instructions and tool schema, outside the examples."""
PARENT_INSTRUCTION_TOKENS = 600
"""Estimated tokens of the parent prompts' instructions and tool schema, outside the children."""


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


def cluster_prompt(
    members: Sequence[Summary],
    contrast: Sequence[Summary],
    *,
    max_members: int,
    max_contrast: int,
    max_item_tokens: int,
    budget: int,
) -> list[dict[str, str]]:
    """The bounded prompt for one cluster (first members and contrast are kept first).

    Each statement is cut to max_item_tokens; the statements shown stop at budget
    (estimated tokens, at least 100), 60% for members and 40% for contrast.
    """
    budget = max(100, budget)
    shown = fit_items(
        [statement(s, max_item_tokens) for s in members[:max_members]],
        budget * 3 // 5 if contrast else budget,
    )
    left = budget - sum(estimate_tokens(s) + 1 for s in shown)
    others = fit_items([statement(s, max_item_tokens) for s in contrast[:max_contrast]], left)
    return cluster_messages(shown, others)


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


def parent_children(
    children: Sequence[ClusterLabel], *, max_children: int, max_item_tokens: int, budget: int
) -> list[str]:
    """The children a parent prompt shows: "name: description" each cut, as many as fit."""
    texts = [_child_text(c, max_item_tokens) for c in children[:max_children]]
    return fit_items(texts, max(100, budget))


def candidate_names(out: CandidateNames, desired: int) -> list[str]:
    """The model's proposed parent names, cleaned and deduplicated, at most 1.5 x desired.

    Raises:
        NamingError: none of the names is usable.
    """
    names: dict[str, str] = {}
    for raw in out.candidate_cluster_names:
        name = clean_name(raw)
        if name and _norm(name) not in names:
            names[_norm(name)] = name
    if not names:
        raise NamingError("no usable candidate names")
    return list(names.values())[: max(1, (3 * desired) // 2)]


def choice_prompt(
    child: ClusterLabel, candidates: Sequence[str], max_item_tokens: int
) -> tuple[type[_Choice], list[dict[str, str]]]:
    """The answer model and messages to choose child's parent among candidates.

    Candidates are offered in a shuffled order (Clio: avoids a bias to the first), seeded by
    the child so runs repeat; the answer model accepts only one of them.
    """
    offered = list(dict.fromkeys(candidates))
    seed = hashlib.sha256(child.name.encode()).digest()
    random.Random(seed).shuffle(offered)
    model = type("ParentChoice", (_Choice,), {"candidates": tuple(offered)})
    return model, choose_messages(_child_text(child, max_item_tokens), offered)
