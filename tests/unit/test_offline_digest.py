"""The offline digest (what is embedded) and the readable request (what a person reads)."""

from __future__ import annotations

import time

import numpy as np

from kura_stream.stages.offline_digest import (
    DIGEST_MAX_WORDS,
    code_regions,
    digest,
    imperative,
    readable_request,
)
from kura_stream.stages.offline_labels import confident_label
from kura_stream.types import Summary

STORY = (
    "Can you summarise this news story for me?\n"
    "Brazil stocks rally as inflation eases\n"
    + "Shares in Sao Paulo rose for a fifth day on Friday as investors bet that falling "
    "inflation would let the central bank cut interest rates sooner than expected. " * 4
)


def test_a_pasted_story_reads_as_its_instruction_about_its_title() -> None:
    assert readable_request(STORY, ["inflation", "shares"]) == (
        "Summarise a news story about Brazil stocks rally as inflation eases"
    )


def test_without_a_title_the_subject_is_the_key_phrases() -> None:
    body = "Please proofread the following essay: " + "the economy of rural Wales is small. " * 12
    assert readable_request(body, ["rural wales", "economy"]) == (
        "Proofread a essay about rural wales and economy"
    )


def test_a_short_message_is_its_own_request() -> None:
    text = "Hi! What is the capital of Peru? I need it for a quiz. Thanks a lot."
    assert readable_request(text, ["capital peru"]) == (
        "What is the capital of Peru? I need it for a quiz."
    )


def test_imperative_drops_politeness_and_pointing() -> None:
    assert imperative("Could you please translate the following text for me?") == (
        "Translate a text"
    )
    assert imperative("Write a haiku") == "Write a haiku"


def test_digest_carries_every_user_turn_and_is_bounded() -> None:
    turns = ["Hello there, how do I sort a list in Python?", "And in reverse order?"]
    assert digest(turns) == "how do I sort a list in Python? And in reverse order?"
    long = digest(["word " * 1000, "later turn"])
    assert len(long.split()) == DIGEST_MAX_WORDS
    assert "later" not in long


def test_digest_of_code_only_keeps_the_code() -> None:
    assert digest(["```\nx = 1\n```"]) == "``` x = 1 ```"
    assert "[code]" not in digest(["Why does this fail?\n```py\nimport os\n```"])


def test_the_story_is_embedded_by_its_content_not_its_framing() -> None:
    summary = Summary(chat_id="c", summary="s", digest=digest([STORY]))
    assert "inflation" in summary.embedding_text()
    assert Summary(chat_id="c", summary="Only this").embedding_text() == "Only this"


def test_a_run_of_backticks_is_linear() -> None:
    started = time.perf_counter()
    code_regions("`" * 120_000)
    code_regions("```" + "a" * 50_000 + "`" * 50_000)
    assert time.perf_counter() - started < 2.0


def test_a_label_is_given_only_when_it_clearly_wins() -> None:
    labels = ["a", "b", "c"]
    vectors = np.eye(3, dtype=np.float32)
    clear = np.array([0.9, 0.1, 0.1], np.float32)
    assert confident_label(clear, vectors, labels) == "a"
    torn = np.array([0.60, 0.58, 0.1], np.float32)
    assert confident_label(torn, vectors, labels) is None


def test_remembered_code_regions_are_not_shared_with_the_caller() -> None:
    text = "Why does `x = 1;` fail?\n```python\nprint(1)\n```"
    _, blocks = code_regions(text)
    blocks.append(("", "mine"))
    assert code_regions(text)[1] == [("python", "print(1)\n"), ("", "x = 1;")]
    long = text + " a" * 5000  # too long to remember: computed each time, the same answer
    assert code_regions(long)[1] == code_regions(long)[1]
