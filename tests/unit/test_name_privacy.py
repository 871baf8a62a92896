"""The offline namers' privacy checks: personal names, rare words, quoted members."""

from __future__ import annotations

from kura_stream.stages.name_privacy import (
    conversations_per_word,
    is_full_name,
    is_personal_name,
    quotes_a_member,
    word_uses,
)

# A seeded list: common first names and surnames of several countries, and ordinary topic
# words, ten of which are also common names ("Rose", "Grace", "Mark", "Bill", "Brown").
NAMES = """
James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth Fatima Mohammed Ahmed
Priya Wei Hiroshi Olga Giuseppe Carlos Sofia Smith Johnson Williams Garcia Nguyen Kennedy
Rodriguez Kowalski Ivanov Patel
""".split()  # noqa: SIM905
WORDS = """
python hotel march rose restaurant train taxi football league recipe dataframe weather music
guitar invoice parking grace mark bill hope summer king brown park cook pandas wifi budget
mortgage soccer
""".split()  # noqa: SIM905


def flagged_in(sentence: str, word: str) -> bool:
    return is_personal_name(word, word_uses([sentence]).get(word.casefold()))


def name_sentence(word: str) -> str:
    return f"I talked about the plan with {word} yesterday and {word} said it was fine."


def test_recall_on_names_written_as_names() -> None:
    caught = [n for n in NAMES if flagged_in(name_sentence(n), n)]
    assert len(caught) / len(NAMES) == 1.0, sorted(set(NAMES) - set(caught))


def test_recall_without_context() -> None:
    # With no casing evidence, names that are also English words ("mary", "smith") pass:
    # 26 of 30 are still caught.
    caught = [n for n in NAMES if is_personal_name(n)]
    assert len(caught) >= 26, sorted(set(NAMES) - set(caught))


def test_precision_on_ordinary_words() -> None:
    for sentence in ("I need help with {w} for my project today.", "Is {w} a good idea?"):
        wrong = [w for w in WORDS if flagged_in(sentence.format(w=w), w)]
        assert wrong == [], wrong
    assert [w for w in WORDS if is_personal_name(w)] == []
    # Capitalised mid-sentence, an ordinary word that is no common name stays a word.
    for word in ("Python", "Hotel", "League", "Tory", "March", "Monday", "French"):
        assert not flagged_in(f"I asked about {word} today.", word), word
    # ...but a common name that is also a word counts as a name when written as one.
    assert flagged_in("I met Rose and Grace at the station.", "Rose")


def test_possessives_titles_and_hyphens() -> None:
    assert is_personal_name("Fatima's")
    assert is_personal_name("jean-paul")
    assert flagged_in("The patient saw Dr. Brown about it.", "Brown")
    assert not is_personal_name("well-known")


def test_conversations_are_counted_once_each() -> None:
    counts = conversations_per_word(
        ["Zanzibar trip", "zanzibar again", "Zanzibar"], ["a", "a", "b"]
    )
    assert counts["zanzibar"] == 2


def test_quotes_a_member_needs_eight_consecutive_words() -> None:
    member = "please write a short limerick about a sleepy cat on a warm laptop"
    assert quotes_a_member("They ask: write a short limerick about a sleepy cat.", [member])
    assert not quotes_a_member("Members ask about limerick, sleepy cat and laptop.", [member])


def test_a_first_name_and_surname_in_lower_case_is_a_person() -> None:
    assert is_full_name("henry", "spencer")
    assert is_full_name("Jennifer", "Lopez")
    assert not is_full_name("free", "parking")
    assert not is_full_name("police", "station")
