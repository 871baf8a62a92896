"""The LLM stages against a real local model: outputs validate (their wording is not tested)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import instructor
import pytest

from kura_stream.adapters.llm.calls import RetryPolicy
from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm.namers import LLMClusterNamer, LLMParentNamer
from kura_stream.adapters.llm.summariser import LLMSummariser
from kura_stream.cache import Cache
from kura_stream.settings import LLMSettings
from kura_stream.stages.prompts import FacetSpec
from kura_stream.stages.summarise import summarise
from kura_stream.types import ClusterLabel, Conversation, Message, Summary

pytestmark = pytest.mark.llm

T0 = datetime(2024, 3, 1, tzinfo=UTC)
RETRY = RetryPolicy(validation_retries=2, attempts=2, base_delay_s=0.5)

CONVERSATIONS = [
    (
        "How do I read a CSV file with pandas and skip the first two rows?",
        "Use pd.read_csv('file.csv', skiprows=2).",
        "Thanks, that worked!",
    ),
    (
        "Can you write a short poem about autumn leaves for my daughter Emma?",
        "Crimson and gold, the leaves let go, / dancing down to the grass below.",
    ),
    (
        "My email is sam.jones@example.com. Please draft a polite note to my landlord about a "
        "broken heater.",
        "Dear landlord, I am writing to let you know the heater in my flat has stopped working.",
        "That is too formal, make it friendlier.",
    ),
    (
        "What is the derivative of x^3 * sin(x)?",
        "By the product rule: 3x^2 sin(x) + x^3 cos(x).",
    ),
    (
        "¿Qué puedo cocinar con arroz, huevos y espinacas?",
        "Puedes hacer un arroz frito con huevo y espinacas salteadas.",
    ),
]


def conversations() -> list[Conversation]:
    out = []
    for i, turns in enumerate(CONVERSATIONS):
        messages = tuple(
            Message(created_at=T0, role="user" if j % 2 == 0 else "assistant", content=t)
            for j, t in enumerate(turns)
        )
        out.append(Conversation(chat_id=f"real-{i}", created_at=T0, messages=messages))
    return out


async def test_llm_summariser_outputs_validate(llm_settings: LLMSettings, tmp_path: Path) -> None:
    # MD_JSON: llama.cpp turns a TOOLS schema into a sampling grammar, which generated 3-4
    # tokens/s against 21-27 in MD_JSON on the shared 2-core machine (0.5B model).
    client = make_instructor_client(llm_settings, mode=instructor.Mode.MD_JSON)
    summariser = LLMSummariser(
        client,
        model=llm_settings.model,
        facets=[FacetSpec(name="has_code", question="Does it contain code?", type="bool")],
        retry=RETRY,
    )
    convs = conversations()
    with Cache(tmp_path / "cache.sqlite") as cache:
        result = await summarise(convs, summariser=summariser, cache=cache, concurrency=1)
        assert len(result.summaries) + len(result.failures) == len(convs)
        # a 0.5B model may fail one; every failure must carry its reason
        assert len(result.summaries) >= len(convs) - 1, result.failures
        assert all(reason for _, reason in result.failures)
        for s in result.summaries:
            assert isinstance(s, Summary)
            assert s.summary
            assert s.summariser == summariser.name
            assert s.concerning_score is None or 1 <= s.concerning_score <= 5
            assert isinstance(s.facets.get("has_code"), bool)
            assert "sam.jones@example.com" not in s.model_dump_json()
        again = await summarise(convs, summariser=summariser, cache=cache, concurrency=1)
        assert again.cache_hits == len(result.summaries)


def group(*texts: str) -> list[Summary]:
    return [Summary(chat_id=f"g{i}", summary=t) for i, t in enumerate(texts)]


async def test_llm_namers_outputs_validate(llm_settings: LLMSettings) -> None:
    client = make_instructor_client(llm_settings)  # Mode.TOOLS, the default
    code = group(
        "The user asked how to fix a Python import error.",
        "The user asked why a pandas merge drops rows.",
        "The user asked for help debugging a failing unit test.",
    )
    cooking = group(
        "The user asked for a recipe using rice and eggs.",
        "The user asked how long to bake a chicken.",
        "The user asked for a vegetarian dinner idea.",
    )
    namer = LLMClusterNamer(client, model=llm_settings.model, retry=RETRY)
    labels = [await namer.label(code, cooking), await namer.label(cooking, code)]
    for label in labels:
        assert isinstance(label, ClusterLabel)
        assert label.name
        assert label.slug == "" or all(w.isalnum() for w in label.slug.split("_"))

    parents = LLMParentNamer(client, model=llm_settings.model, retry=RETRY)
    children = [
        *labels,
        ClusterLabel(name="Plan a weekend trip", description="Users planned short trips."),
    ]
    candidates = await parents.propose_parents(children, desired=2)
    assert 1 <= len(candidates) <= 3
    assert all(candidates)
    chosen = await parents.choose_parent(children[0], candidates)
    assert chosen in candidates
    parent = await parents.label_parent(children[:2])
    assert isinstance(parent, ClusterLabel)
    assert parent.name
