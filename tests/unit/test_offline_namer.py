"""The offline namers: distinctive key phrases instead of an LLM."""

from __future__ import annotations

import re

import pytest

from kura_stream.protocols import ClusterNamer, ParentNamer
from kura_stream.stages.offline_namer import (
    FALLBACK_NAME,
    OfflineClusterNamer,
    distinctive_phrases,
    select_phrases,
)
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import ClusterLabel, Summary

PYTHON = [
    "The user asks for help debugging a Python error in a pandas dataframe merge.",
    "The user wants to fix a KeyError raised by a pandas dataframe in a Python script.",
    "The user is debugging a Python error when loading a CSV file into a pandas dataframe.",
    "The user asks why a Python script throws a TypeError on a pandas dataframe column.",
    "The user needs help debugging a Python error in a pandas groupby on a dataframe.",
    "The user asks how to fix a Python error about dtype in a pandas dataframe.",
]
RECIPES = [
    "The user asks for a vegetarian lasagna recipe with spinach and ricotta.",
    "The user wants a quick chicken curry recipe for a weeknight dinner.",
    "The user asks for a sourdough bread recipe suitable for beginners.",
    "The user asks for a chocolate cake recipe without eggs.",
    "The user wants a vegan curry recipe with chickpeas and coconut milk.",
    "The user asks for a recipe for a quick weeknight dinner with pasta.",
]
TRAVEL = [
    "The user wants a travel itinerary for three days in Lisbon.",
    "The user asks for a travel itinerary for a week in Japan by train.",
    "The user asks for cheap flights and a travel itinerary for Rome.",
    "The user wants a travel itinerary for a road trip in Scotland.",
]


def summaries(texts: list[str], prefix: str) -> list[Summary]:
    return [
        Summary(
            chat_id=f"{prefix}-secret-id-{i}",
            summary=text,
            request=text.removeprefix("The user ").capitalize(),
            metadata={"email": "jane.doe@example.com"},
            facets={"account": "ACME-4711"},
        )
        for i, text in enumerate(texts)
    ]


def words_of(name: str) -> list[str]:
    return [w for w in name.split() if w != "/"]


async def test_python_group_is_named_by_a_python_phrase() -> None:
    label = await OfflineClusterNamer().label(
        summaries(PYTHON, "py"), summaries(RECIPES + TRAVEL, "other")
    )
    assert re.search(r"python|pandas|dataframe", label.name.lower())
    assert not re.search(r"recipe|travel", label.name.lower())
    assert 1 <= len(words_of(label.name)) <= 8
    assert all(w[0].isupper() for w in words_of(label.name))


async def test_recipe_group_is_named_by_a_recipe_phrase() -> None:
    label = await OfflineClusterNamer().label(summaries(RECIPES, "r"), summaries(PYTHON, "py"))
    assert "recipe" in label.name.lower()
    assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+){0,2}", label.slug)
    assert "recipe" in label.slug


async def test_description_lists_phrases_and_a_typical_request() -> None:
    label = await OfflineClusterNamer().label(summaries(TRAVEL, "t"), summaries(RECIPES, "r"))
    assert label.description.startswith("Conversations about ")
    assert "travel itinerary" in label.description
    assert "Typical request: " in label.description
    assert "itinerary" in label.name.lower()


async def test_boilerplate_and_contrast_shared_words_are_not_names() -> None:
    label = await OfflineClusterNamer().label(summaries(PYTHON, "py"), summaries(RECIPES, "r"))
    assert not re.search(r"\b(user|asks|wants|help)\b", label.name.lower())


async def test_never_emits_ids_metadata_or_facets() -> None:
    label = await OfflineClusterNamer().label(summaries(PYTHON, "py"), summaries(TRAVEL, "t"))
    text = label.model_dump_json().lower()
    for secret in ("secret", "jane", "example.com", "acme", "4711"):
        assert secret not in text


async def test_nothing_distinctive_gives_the_fallback_name() -> None:
    stop_words_only = [Summary(chat_id=str(i), summary="The user asks for it.") for i in range(5)]
    label = await OfflineClusterNamer().label(stop_words_only, [])
    assert label.name == FALLBACK_NAME
    assert label.slug == "miscellaneous_requests"


def test_a_phrase_as_common_outside_as_inside_scores_nothing() -> None:
    members = ["quick pasta dinner", "quick soup dinner", "quick salad dinner", "quick bread"]
    contrast = ["quick flight", "quick hotel", "quick train", "quick car"]
    phrases = distinctive_phrases(members, contrast)
    assert "quick" not in phrases
    assert phrases[0] == "dinner"


def test_phrases_from_a_single_member_are_ignored() -> None:
    members = ["pasta dinner idea", "soup dinner idea", "salad dinner idea", "zebra dinner idea"]
    assert "zebra" not in distinctive_phrases(members, [])


def test_longer_phrase_replaces_a_shorter_one_it_contains() -> None:
    chosen = select_phrases({"pandas": 1.0, "pandas dataframe": 0.8, "error": 0.5}, 3)
    assert chosen == ["pandas dataframe", "error"]
    kept = select_phrases({"pandas": 1.0, "pandas dataframe": 0.3, "error": 0.5}, 3)
    assert kept == ["pandas", "error"]


def child(name: str, description: str = "") -> ClusterLabel:
    return ClusterLabel(name=name, description=description)


CHILDREN = [
    child("Python Error / Pandas Dataframe", "Conversations about python error and pandas."),
    child("Python Error / Flask App", "Conversations about python error and flask."),
    child("Python Packaging / Pip Install", "Conversations about python packaging."),
    child("Curry Recipe / Vegan", "Conversations about curry recipe and vegan dishes."),
    child("Cake Recipe / Baking", "Conversations about cake recipe and baking."),
]


async def test_parent_candidates_cover_the_children() -> None:
    namer = OfflineParentNamer()
    candidates = await namer.propose_parents(CHILDREN, 2)
    assert 1 <= len(candidates) <= 2
    assert {c.lower() for c in candidates} == {"python", "recipe"}


async def test_choose_parent_answers_with_a_candidate_verbatim() -> None:
    namer = OfflineParentNamer()
    candidates = ["Recipe", "Python", "Travel Plans"]
    for c, expected in zip(
        CHILDREN, ["Python", "Python", "Python", "Recipe", "Recipe"], strict=True
    ):
        assert await namer.choose_parent(c, candidates) == expected
    unrelated = await namer.choose_parent(child("Zzz"), candidates)
    assert unrelated in candidates
    with pytest.raises(ValueError, match="no candidates"):
        await namer.choose_parent(child("x"), [])


async def test_label_parent_names_the_shared_theme() -> None:
    label = await OfflineParentNamer().label_parent(CHILDREN[:3])
    assert "python" in label.name.lower()
    assert "Python Error / Pandas Dataframe" in label.description
    assert label.slug.startswith("python")


async def test_parent_namer_on_empty_texts() -> None:
    namer = OfflineParentNamer()
    assert await namer.propose_parents([child("The"), child("A")], 3) == [FALLBACK_NAME]
    assert (await namer.label_parent([child("The")])).name == FALLBACK_NAME


def test_offline_namers_implement_the_protocols() -> None:
    assert isinstance(OfflineClusterNamer(), ClusterNamer)
    assert isinstance(OfflineParentNamer(), ParentNamer)
    assert OfflineClusterNamer().name.startswith("offline:")
