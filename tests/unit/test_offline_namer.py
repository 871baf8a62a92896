"""The offline namers: distinctive key phrases instead of an LLM."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.protocols import ClusterNamer, ParentNamer
from kura_stream.stages.offline_namer import (
    FALLBACK_NAME,
    OfflineClusterNamer,
    distinctive_phrases,
)
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.stages.phrases import select_phrases
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
    "The user asks for a travel itinerary for a weekend of hiking.",
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
    return name.split()


async def test_python_group_is_named_by_a_python_phrase() -> None:
    label = await OfflineClusterNamer().label(
        summaries(PYTHON, "py"), summaries(RECIPES + TRAVEL, "other")
    )
    assert re.search(r"python|pandas|dataframe", label.name.lower())
    assert not re.search(r"recipe|travel", label.name.lower())
    assert 1 <= len(words_of(label.name)) <= 8
    # Names are sentence-cased phrases now ("Pandas dataframe and Python"), no longer
    # title-cased keyword pairs ("Python Error / Pandas Dataframe").
    assert label.name[0].isupper()
    assert " / " not in label.name


async def test_recipe_group_is_named_by_a_recipe_phrase() -> None:
    label = await OfflineClusterNamer().label(summaries(RECIPES, "r"), summaries(PYTHON, "py"))
    assert "recipe" in label.name.lower()
    assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+){0,2}", label.slug)
    assert "recipe" in label.slug


async def test_description_lists_phrases_and_never_quotes_a_request() -> None:
    # The old description ended in "Typical request: <one member's request>"; quoting a
    # member is what the privacy rules now forbid, so it lists shared phrases only.
    label = await OfflineClusterNamer().label(summaries(TRAVEL, "t"), summaries(RECIPES, "r"))
    assert label.description.startswith("Members ask about ")
    assert "travel itinerary" in label.description
    assert "Typical request" not in label.description
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
    members += ["quick stew dinner", "quick rice dinner"]  # "dinner" in five: the threshold
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
    child("Python error and pandas dataframe", "Members ask about python error and pandas."),
    child("Python error and Flask app", "Members ask about python error and flask."),
    child("Python packaging and pip install", "Members ask about python packaging."),
    child("Curry recipe and vegan dishes", "Members ask about curry recipe and vegan dishes."),
    child("Cake recipe and baking", "Members ask about cake recipe and baking."),
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
    assert " / " not in label.name
    assert "Python error and pandas dataframe" in label.description
    assert label.slug.startswith("python")


async def test_parent_namer_on_empty_texts() -> None:
    namer = OfflineParentNamer()
    assert await namer.propose_parents([child("The"), child("A")], 3) == [FALLBACK_NAME]
    assert (await namer.label_parent([child("The")])).name == FALLBACK_NAME


def test_offline_namers_implement_the_protocols() -> None:
    assert isinstance(OfflineClusterNamer(), ClusterNamer)
    assert isinstance(OfflineParentNamer(), ParentNamer)
    assert OfflineClusterNamer().name.startswith("offline:")


def member(chat_id: str, text: str) -> Summary:
    return Summary(chat_id=chat_id, summary=text, request=text)


BIKES = [
    "The user asks how to fix a flat tyre on a road bike before a race.",
    "The user wants to fix a flat tyre on a mountain bike after a ride.",
    "The user asks which tools fix a flat tyre on a road bike quickly.",
    "The user wants to adjust the gears on a road bike that skips.",
    "The user asks how to adjust the gears on a mountain bike properly.",
    "The user wants to adjust the brakes and gears on a road bike.",
]


def bare_keyword_pair(name: str) -> bool:
    """Two single keywords joined by a slash or another separator: "Tories / Tory"."""
    return bool(re.fullmatch(r"[\w'-]+\s*[/|;,+]\s*[\w'-]+", name))


async def test_names_never_join_keywords_with_a_slash() -> None:
    groups = [PYTHON, RECIPES, TRAVEL, BIKES]
    for i, texts in enumerate(groups):
        others = [t for j, g in enumerate(groups) if j != i for t in g]
        label = await OfflineClusterNamer().label(summaries(texts, "m"), summaries(others, "o"))
        assert "/" not in label.name, label.name
        assert not bare_keyword_pair(label.name), label.name
        assert label.name[0].isupper()
        assert len(label.name.split()) <= 8
        assert label.name != FALLBACK_NAME  # each group has distinctive phrases


async def test_a_personal_name_in_every_member_never_reaches_the_label() -> None:
    for name in ("Fatima", "fatima", "Kennedy", "Grace"):
        texts = [
            f"My colleague {name} asks for a birthday party plan with a chocolate cake.",
            f"Plan a birthday party for {name} with games and a chocolate cake.",
            f"{name} wants a birthday party plan: chocolate cake and balloons.",
            f"A surprise birthday party for {name}, with a chocolate cake please.",
            f"Ideas for the birthday party of {name}, chocolate cake included.",
            f"Help me plan {name}'s birthday party with a chocolate cake.",
        ]
        members = [member(f"p{i}", t) for i, t in enumerate(texts)]
        label = await OfflineClusterNamer().label(members, summaries(PYTHON, "o"))
        assert name.casefold() not in label.model_dump_json().casefold(), label
        assert "birthday party" in label.name.lower()


async def test_a_word_in_four_conversations_never_reaches_the_label() -> None:
    # "zanzibar" is in six summaries but only four distinct conversations (two conversations
    # were summarised twice); "spice market" is in six.
    ids = ["a", "b", "c", "d", "a", "b", "e", "f"]
    texts = [f"The user plans a trip to the spice market in zanzibar, day {i}." for i in range(6)]
    texts += ["The user plans a trip to the spice market.", "The user plans a spice market trip."]
    members = [member(c, t) for c, t in zip(ids, texts, strict=True)]
    label = await OfflineClusterNamer().label(members, summaries(PYTHON, "o"))
    assert "zanzibar" not in label.model_dump_json().lower()
    assert "spice market" in label.name.lower()


def quoted_runs(text: str, members: list[str], n: int = 8) -> list[str]:
    words = re.findall(r"[\w'-]+", text.lower())
    runs = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    out = []
    for m in members:
        mw = re.findall(r"[\w'-]+", m.lower())
        out += [r for r in runs if r in {" ".join(mw[i : i + n]) for i in range(len(mw))}]
    return out


async def test_the_description_never_quotes_a_member() -> None:
    same = "write a short limerick about a sleepy cat on a warm laptop keyboard"
    texts = [same] * 4 + [f"{same} today", f"please {same}", f"{same} for my blog"]
    members = [member(f"q{i}", t) for i, t in enumerate(texts)]
    task = "Write a short limerick about a sleepy cat on a warm laptop keyboard"
    members = [m.model_copy(update={"task": task}) for m in members]
    for label in (
        await OfflineClusterNamer().label(members, summaries(RECIPES, "o")),
        await OfflineClusterNamer().label(summaries(PYTHON + RECIPES, "m"), summaries(TRAVEL, "o")),
    ):
        assert label.description, label
        assert not quoted_runs(label.description, [*texts, task, *PYTHON, *RECIPES])
        assert "Typical request" not in label.description


async def test_singular_and_plural_phrases_are_merged() -> None:
    texts = [
        "The user asks why the Tories lost the by-election in the north.",
        "The user asks what the Tory manifesto says about the by-election.",
        "The user asks whether the Tories can win the next by-election.",
        "The user asks how Tory voters reacted to the by-election result.",
        "The user asks what the Tories promised before the by-election.",
        "The user asks about the Tory leadership after the by-election.",
        "The user asks about Tory and Tories polls ahead of the by-election.",
    ]
    members = [member(f"t{i}", t) for i, t in enumerate(texts)]
    label = await OfflineClusterNamer().label(members, summaries(PYTHON + RECIPES, "o"))
    lowered = label.name.lower().split()
    assert not ({"tory", "tories"} <= set(lowered)), label.name
    assert not ({"tory", "tories"} <= set(label.description.lower().replace(",", "").split()))
    phrases = distinctive_phrases(texts, RECIPES)
    assert sum(p.lower() in {"tory", "tories"} for p in phrases) <= 1, phrases
    colours = ["The user picks colors for a logo.", "The user picks a color for a wall."] * 3
    found = distinctive_phrases(colours, RECIPES)
    assert sum(bool(re.search(r"\bcolors?\b", p)) for p in found) == 1, found


async def test_a_shared_task_and_questions_shape_the_name() -> None:
    asks = [f"What is the best {w} python library for plotting charts?" for w in "abcdef"]
    members = [member(f"w{i}", t) for i, t in enumerate(asks)]
    label = await OfflineClusterNamer().label(members, summaries(RECIPES, "o"))
    assert label.name.startswith("Questions about "), label.name
    tasked = [m.model_copy(update={"task": "The task is to explain code."}) for m in members]
    label = await OfflineClusterNamer().label(tasked, summaries(RECIPES, "o"))
    assert label.name.startswith("Explain code: "), label.name
    assert label.description.startswith("Members ask to explain code, mostly about ")
    # A task too long for an eight-word name still says what members ask in the description.
    long_task = "Write, debug or explain code"
    tasked = [m.model_copy(update={"task": long_task}) for m in members]
    label = await OfflineClusterNamer().label(tasked, summaries(RECIPES, "o"))
    assert len(label.name.split()) <= 8
    assert label.description.startswith("Members ask to write, debug or explain code")


def test_emails_domains_and_ids_never_form_phrases() -> None:
    members = [
        f"henry@zoo.toronto.edu writes in article about TR{i}23 orbit launch" for i in range(6)
    ]
    contrast = ["writes in article about hockey playoffs"] * 6
    found = " ".join(distinctive_phrases(members, contrast)).lower()
    assert "orbit" in found
    assert not re.search(r"henry|zoo|toronto|edu|tr\d|writes in article", found)


async def test_a_shared_opening_names_a_cluster_without_a_topic() -> None:
    texts = ["you are dirty", "you are messy", "You are a coward", "you are rude", "you are slow"]
    label = await OfflineClusterNamer().label(summaries(texts, "y"), summaries(RECIPES, "r"))
    assert label.name == '"You are …" messages'
    # An opening four conversations share is not enough.
    label = await OfflineClusterNamer().label(summaries(texts[:4], "y"), summaries(RECIPES, "r"))
    assert label.name == FALLBACK_NAME


class KeywordEmbedder:
    """One axis per keyword: texts mentioning the same keywords are near."""

    name = "keywords"
    dim = 4
    words = ("pandas", "python", "recipe", "travel")

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = [[float(w in t.lower()) for w in self.words] for t in texts]
        out: npt.NDArray[np.float32] = np.asarray(rows, dtype=np.float32) + 1e-3
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


async def test_an_embedder_chooses_among_checked_candidates() -> None:
    namer = OfflineClusterNamer(embedder=KeywordEmbedder())
    assert namer.name.endswith("+emb:keywords")
    label = await namer.label(summaries(PYTHON, "py"), summaries(RECIPES + TRAVEL, "other"))
    assert re.search(r"python|pandas", label.name.lower())
    assert "secret" not in label.name
    assert " / " not in label.name
