"""The batch language identifier answers as py3langid's classify, text by text."""

from __future__ import annotations

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from kura_stream.stages.language_id import classify_batch

TEXTS = [
    "I need a train to Cambridge on Tuesday, leaving after 10:00.",
    "Je voudrais réserver une table pour deux personnes ce soir.",
    "Ich suche ein günstiges Hotel in der Nähe vom Bahnhof.",
    "¿Dónde está la estación de tren más cercana?",
    "Срочно нужен билет до Москвы",
    "東京駅までの行き方を教えてください",
    "ok",
    "!!!",
    "",
    "HELLO THERE CAN YOU HELP ME",
    "def main(): print('hi')",
]


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def test_a_batch_gets_the_answers_of_classify(identifier: LanguageIdentifier) -> None:
    batch = classify_batch(identifier, TEXTS)
    for text, (code, prob) in zip(TEXTS, batch, strict=True):
        want_code, want_prob = identifier.classify(text)
        assert code == want_code, text
        assert prob == pytest.approx(want_prob, abs=1e-5), text


def test_an_empty_batch_and_an_identifier_without_the_tables() -> None:
    class Plain:
        def classify(self, text: str) -> tuple[str, float]:
            return "xx", 1.0

    assert classify_batch(Plain(), []) == []
    assert classify_batch(Plain(), ["a", "b"]) == [("xx", 1.0), ("xx", 1.0)]
