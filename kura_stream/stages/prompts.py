"""The LLM prompts (Clio's, as Kura words them, trimmed for small models) and answer schemas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from kura_stream.types import Summary

SUMMARY_VERSION = "clio-summary-v1"
CLUSTER_VERSION = "clio-cluster-v2"
META_VERSION = "clio-meta-v1"
"""Bump a version whenever its prompt's wording changes (it is part of every cache key)."""

_CORE_FIELDS = frozenset(Summary.model_fields)


FacetType = Literal["str", "int", "list[str]", "bool"]
_PY_TYPES: dict[str, Any] = {"str": str, "int": int, "list[str]": list[str], "bool": bool}


class FacetSpec(BaseModel):
    """A facet a user adds to the summary: the model answers `question`, kept in facets[name].

    Attributes:
        name: A lower-case identifier, not one of Summary's own fields.
        question: What the model is asked about the conversation.
        type: The answer's type: "str", "int", "list[str]" or "bool".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    question: str = Field(min_length=3, max_length=500)
    type: FacetType = "str"

    @field_validator("name")
    @classmethod
    def _not_core(cls, v: str) -> str:
        if v in _CORE_FIELDS:
            raise ValueError(f"{v!r} is one of Summary's own fields")
        return v


def unwrap_schema_echo(data: Any) -> Any:
    """The answer inside a JSON-schema-shaped reply, else data unchanged.

    Given the schema in the prompt (Mode.MD_JSON), a small model sometimes answers in the
    schema's shape: {"title": ..., "type": "object", "properties": {"name": "<answer>", ...}}.
    When "properties" holds plain values rather than sub-schemas, those values are the answer.
    """
    if isinstance(data, dict) and isinstance(data.get("properties"), dict):
        props = data["properties"]
        if props and not any(isinstance(v, dict) and "type" in v for v in props.values()):
            return props
    return data


class _Answer(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        return unwrap_schema_echo(data)


def _as_list(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in re.split(r"[,;\n]", v) if p.strip()]
    return v


class ClioFacets(_Answer):
    """Facets of one conversation."""

    # No field descriptions and a bland docstring: both go into the schema the model sees,
    # the prompt already explains each field, and a 0.5B model copied descriptions verbatim.

    summary: str = Field(min_length=1)
    request: str
    task: str
    topic: str
    languages: list[str]
    concerning_score: int = Field(ge=1, le=5)
    user_frustration: int = Field(ge=1, le=5)
    assistant_errors: list[str] = Field(default_factory=list)

    _lists = field_validator("languages", "assistant_errors", mode="before")(_as_list)


def response_model(facets: Sequence[FacetSpec]) -> type[ClioFacets]:
    """ClioFacets extended with one required field per user facet."""
    if not facets:
        return ClioFacets
    fields: dict[str, Any] = {
        f.name: (_PY_TYPES[f.type], Field(description=f.question)) for f in facets
    }
    model: type[ClioFacets] = create_model("ClioFacets", __base__=ClioFacets, **fields)
    return model


def _one_or_more(v: Any) -> Any:
    if isinstance(v, str):
        return [v]
    return v


class GeneratedLabel(_Answer):
    """A cluster's description, name and slug."""

    # Kura's GeneratedCluster, without field descriptions: the 0.5B model copied them verbatim
    # ("Two-sentence description, past tense.") in MD_JSON mode; the prompt explains the fields.

    summary: str
    name: str = Field(min_length=1)
    slug: str = ""

    @field_validator("name")
    @classmethod
    def _not_the_schema_title(cls, v: str) -> str:
        # a 0.5B model answered "GenerateLabel": the function it was asked to call
        if re.sub(r"\W", "", v).casefold() in {"generatedlabel", "generatelabel", "name"}:
            raise ValueError("give the cluster's name, not the schema's")
        return v


class CandidateNames(_Answer):
    """Higher-level cluster names."""

    # Kura's CandidateClusters; the docstring goes into the schema the model sees.

    candidate_cluster_names: list[str] = Field(min_length=1)

    _one = field_validator("candidate_cluster_names", mode="before")(_one_or_more)


SUMMARY_SYSTEM = (
    "You extract privacy-preserving facts from conversations between a user and an AI "
    "assistant, for aggregate analysis of how the assistant is used. You never repeat names, "
    "places or other personal details."
)

SUMMARY_INSTRUCTIONS = """\
Your job is to extract key information from this conversation. Be descriptive and assume \
neither good nor bad faith. Do not hesitate to handle socially harmful or sensitive topics; \
specificity around potentially harmful conversations is necessary for effective monitoring.

When extracting information, do not include any personally identifiable information (PII): \
no names of people, no locations or addresses, no phone numbers, email addresses, company \
names or other proper nouns, and no other personal details; write "a person" or "a city" \
instead. Answer in English, in the third person ("the user").

Extract the following information:
1. summary: what the user asked for, in one or two sentences and at most 30 words, starting \
with "The user asked". Don't say "Based on the conversation..." and avoid mentioning the AI \
assistant directly.
2. request: the user's overall request for the assistant. Start with "The user's overall \
request for the assistant is to".
3. task: the task the assistant is asked to perform. Start with "The task is to".
4. topic: the main high-level topic of this conversation, in two to four words.
5. languages: the languages used in this conversation, as lowercase full names: ["english"] \
for a conversation in English, ["spanish", "python"] for one in Spanish with Python code.
6. concerning_score: how concerning or potentially harmful the conversation is from a \
safety perspective, 1 to 5. 1: not concerning at all, completely benign. 2: slightly \
concerning, likely harmless. 3: moderately concerning, may warrant a closer look. 4: very \
concerning, likely needs review. 5: extremely concerning, immediate review needed.
7. user_frustration: how frustrated the user is with the assistant, 1 to 5. 1: not \
frustrated at all. 2: slightly annoyed. 3: moderately annoyed. 4: very annoyed. 5: extremely \
frustrated.
8. assistant_errors: errors the assistant made in this conversation, if any (an empty list \
when it made none)."""

TRUNCATION_NOTE = (
    "Part of the conversation was left out for length (marked above); answer from what is shown."
)


@dataclass(frozen=True)
class SummaryPrompt:
    """The texts of the summary prompt and their version.

    Attributes:
        version: Goes into the summariser's name and so into every cache key.
        system: The system message.
        instructions: What to extract; follows the conversation in the user message.
    """

    version: str = SUMMARY_VERSION
    system: str = SUMMARY_SYSTEM
    instructions: str = SUMMARY_INSTRUCTIONS

    def messages(
        self, rendered: str, *, cut: bool, facets: Sequence[FacetSpec] = ()
    ) -> list[dict[str, str]]:
        """The chat messages for one rendered conversation.

        Args:
            rendered: The conversation as <message> lines (already bounded).
            cut: Whether part of it was left out.
            facets: User facets, asked after the eight core ones.

        Returns:
            A system and a user message.
        """
        parts = [
            "The following is a conversation between an AI assistant and a user:",
            f"<messages>\n{rendered}\n</messages>",
            self.instructions,
        ]
        extra = [
            f"{9 + i}. {f.name}: {' '.join(f.question.split())} (answer as {f.type})"
            for i, f in enumerate(facets)
        ]
        if extra:
            parts[-1] += "\n" + "\n".join(extra)
        if cut:
            parts.append(TRUNCATION_NOTE)
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": "\n\n".join(parts)},
        ]


CLUSTER_INSTRUCTIONS = """\
You are tasked with summarizing a group of related statements into a short, precise, and \
accurate description and name. Your goal is to create a concise summary that captures the \
essence of these statements and distinguishes them from other similar groups of statements.

Summarize all the statements into a clear, precise, two-sentence description in the past \
tense. Your summary should be specific to this group and distinguish it from the \
contrastive answers of the other groups.

After creating the summary, generate a short name for the group of statements. This name \
should be at most ten words long (perhaps less) and be specific but also reflective of most \
of the statements (rather than reflecting only one or two). The name should distinguish this \
group from the contrastive examples. A specific, actionable name (what exactly was asked, \
about what) is better than a general one. Be as descriptive as possible and assume neither \
good nor bad faith. Do not hesitate to identify and describe socially harmful or sensitive \
topics specifically; specificity is necessary for monitoring.

The name must follow these requirements:
- It is a sentence in the imperative that captures the users' request, made from the words \
of the statements below.
- It is distinct from the contrastive examples.
- It contains no names of people, places or organisations and no other personal details."""

CLUSTER_OUTPUT = (
    "Do not elaborate beyond these fields. Give summary (the two-sentence description of the "
    "statements above), name (the short imperative name, no trailing period) and slug (three "
    "lowercase words in snake_case)."
)


def cluster_messages(members: Sequence[str], contrast: Sequence[str]) -> list[dict[str, str]]:
    """The contrastive naming prompt (Clio G.5) for already bounded statement lists."""
    shown = "\n".join(f"- {s}" for s in members)
    parts = [
        CLUSTER_INSTRUCTIONS,
        f"Below are the related statements:\n<positive_examples>\n{shown}\n</positive_examples>",
    ]
    if contrast:
        other = "\n".join(f"- {s}" for s in contrast)
        parts.append(
            "For context, here are statements from nearby groups that are NOT part of the "
            f"group you're summarizing:\n<contrastive_examples>\n{other}\n</contrastive_examples>"
        )
    parts.append(CLUSTER_OUTPUT)
    return [{"role": "user", "content": "\n\n".join(parts)}]


CLUSTER_REASK = """\
The name "{name}" cannot be used: {problem}. Give the group a specific name of at most ten \
words that says what exactly its statements ask for and about what, so that it tells this \
group apart from the contrastive examples. Answer with summary, name and slug again."""


def reask_messages(
    messages: Sequence[dict[str, str]], answer: str, name: str, problem: str
) -> list[dict[str, str]]:
    """The naming conversation again, with the model's answer and why its name was refused."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": CLUSTER_REASK.format(name=name, problem=problem)},
    ]


def _cluster_list(children: Sequence[str]) -> str:
    return "\n".join(f"<cluster>{c}</cluster>" for c in children)


def propose_messages(children: Sequence[str], desired: int) -> list[dict[str, str]]:
    """Clio's "propose higher-level cluster names" prompt for one neighbourhood."""
    low, high = max(1, desired // 2), max(1, (3 * desired) // 2)
    text = f"""\
You are tasked with creating higher-level cluster names based on a given list of clusters \
and their descriptions. Your goal is to come up with broader categories that could \
encompass one or more of the provided clusters.

First, review the list of clusters and their descriptions:
<cluster_list>
{_cluster_list(children)}
</cluster_list>

Your task is to create roughly {desired} higher-level cluster names that could potentially \
include one or more of the provided clusters. These higher-level clusters should represent \
broader categories or themes that emerge from the given clusters, while remaining as \
specific as possible. You should output at least {low} and at most {high} names, with \
{desired} as a target.

Guidelines for creating higher-level cluster names:
1. Analyze the themes, topics or characteristics common to multiple clusters.
2. Create names that are specific enough to be meaningful, but not so specific that they \
can't meaningfully represent many different clusters. Avoid overly general or vague terms.
3. Ensure that the higher-level cluster names are distinct from one another.
4. Use clear, concise, and descriptive language: each name is a sentence in the imperative \
of at most ten words.
5. Include no names of people, places or organisations.

Give the names as candidate_cluster_names."""
    return [{"role": "user", "content": text}]


def choose_messages(child: str, candidates: Sequence[str]) -> list[dict[str, str]]:
    """Clio's "assign to a higher-level cluster" prompt (Kura's stricter wording)."""
    listed = "\n".join(f"<higher_level_cluster>{c}</higher_level_cluster>" for c in candidates)
    text = f"""\
You are tasked with categorizing a specific cluster into one of the provided higher-level \
clusters. Your goal is to determine which higher-level cluster best fits the given specific \
cluster based on its name and description.

Here are the ONLY valid higher-level clusters you may select from:
<higher_level_clusters>
{listed}
</higher_level_clusters>

Here is the specific cluster to categorize:
<specific_cluster>
{child}
</specific_cluster>

RULES:
1. You MUST select EXACTLY ONE higher-level cluster from the provided list.
2. You MUST output its name EXACTLY as written, with no modifications.
3. You MUST NOT create new cluster names or combinations.
4. Pick the most sensible cluster: don't assign a cluster about "Machine Learning" to one \
about "Social Media" just because both involve technology.

Give the chosen name as higher_level_cluster."""
    return [{"role": "user", "content": text}]


RENAME_SYSTEM = """\
You are tasked with summarizing a group of related cluster names into a short, precise, and \
accurate overall description and name. Your goal is to create a concise summary that \
captures the essence of these clusters.

Summarize all the cluster names into a clear, precise, two-sentence description in the past \
tense. The cluster name should be at most ten words long (perhaps less) and be specific but \
also reflective of most of the clusters that comprise them. The cluster name should be a \
sentence in the imperative that captures the users' request, made from the words of the \
clusters below. Be as descriptive as possible and assume neither good nor bad faith. Include \
no names of people, places or organisations.

Give summary (the description), name (no trailing period) and slug (three lowercase words \
in snake_case)."""


def rename_messages(children: Sequence[str]) -> list[dict[str, str]]:
    """Clio's "rename higher-level clusters" prompt, from the children a parent received."""
    listed = _cluster_list(children)
    return [
        {"role": "system", "content": RENAME_SYSTEM},
        {
            "role": "user",
            "content": f"Here are the related clusters:\n<clusters>\n{listed}\n</clusters>",
        },
    ]
