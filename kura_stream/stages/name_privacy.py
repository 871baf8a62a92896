"""Privacy rules for cluster names: no personal names, no rare words, no quoted members."""

from __future__ import annotations

import calendar
import functools
import locale
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

MIN_CONVERSATIONS = 5
"""A word reaches a name or description only when this many distinct conversations use it
(Clio's aggregation threshold: no label describes fewer than a handful of people)."""

MAX_QUOTE_WORDS = 8
"""A description containing this many consecutive words of one member quotes that member."""

_COMMON_FIRST_FREQUENCY = 4
"""gender-guesser rates a name's frequency per country from 1 (rare) to 13; from this level
up, a name that is also an English word ("Rose", "Mark") counts as a name when capitalised."""
_COMMON_CENSUS_FIRST = 500
"""The most frequent US census first names (per sex) that count when they are also English
words ("Grace", "Dawn"); rarer ones ("Tory", "Summer") are read as the words they are."""
_COMMON_SURNAMES = 3000
"""The most frequent US census surnames that count when they are also English words
("Smith", "Brown"); rarer ones ("League", "Train") are read as the words they are."""

_TITLES = frozenset("mr mrs ms miss mx dr prof sir madam dame lady lord".split())  # noqa: SIM905
_TITLE_DOT = re.compile(r"\b(mrs?|ms|mx|dr|prof)\.", re.IGNORECASE)
"""The full stop of "Dr. Smith" ends no sentence."""
_POSSESSIVE = re.compile("['\u2019]s$")
_WORD = re.compile(r"(?u)[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n+")


@functools.cache
def _first_names() -> tuple[frozenset[str], frozenset[str]]:
    """All first names of gender-guesser's dictionary, and those common in some country."""
    text = resources.files("gender_guesser").joinpath("data/nam_dict.txt").read_text("utf-8")
    every: set[str] = set()
    common: set[str] = set()
    for line in text.splitlines():
        # Column 30 marks names with umlauts, listed twice: "+" the copy to skip, "-" the
        # one to read (it is no part of the name: reading it in dropped "Günter", "Gönül").
        if not line or line[0] in "#=" or line[29:30] == "+":
            continue
        name = line[3:29].strip().casefold()
        if not name.isalpha():
            continue
        every.add(name)
        levels = [int(c, 16) for c in line[30:86] if c in "123456789ABCD"]
        if levels and max(levels) >= _COMMON_FIRST_FREQUENCY:
            common.add(name)
    return frozenset(every), frozenset(common)


@functools.cache
def _census_names() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """US census first names and surnames (`names`), each all and the most frequent."""
    root = resources.files("names")

    def column(file: str) -> list[str]:
        lines = root.joinpath(file).read_text("utf-8").splitlines()
        return [line.split()[0].casefold() for line in lines if line.strip()]

    male, female, last = (
        column("dist.male.first"),
        column("dist.female.first"),
        column("dist.all.last"),
    )
    common = male[:_COMMON_CENSUS_FIRST] + female[:_COMMON_CENSUS_FIRST]
    return (
        frozenset(male + female),
        frozenset(common),
        frozenset(last),
        frozenset(last[:_COMMON_SURNAMES]),
    )


@functools.cache
def _dictionary() -> frozenset[str]:
    """Lower-case English words of Webster's 2nd (proper nouns there are capitalised)."""
    from english_words import get_english_words_set

    words = get_english_words_set(["web2"], lower=False)
    return frozenset(w for w in words if w.islower())


@functools.cache
def _never_names() -> frozenset[str]:
    """Months, weekdays and language names: capitalised in English, yet never a person."""
    calendar_words = [*calendar.month_name, *calendar.day_name]
    languages = [k for k in locale.locale_alias if k.isalpha() and len(k) > 4]
    return frozenset(w.casefold() for w in [*calendar_words, *languages] if w)


@dataclass(frozen=True)
class NameLists:
    """The name lists, lower-cased: every first name and surname, and the common ones.

    Attributes:
        first: First names of gender-guesser (many countries) and the US census.
        common_first: Those common in some country or among the census's most frequent.
        surnames: US census surnames.
        common_surnames: The most frequent of them (_COMMON_SURNAMES).
    """

    first: frozenset[str]
    common_first: frozenset[str]
    surnames: frozenset[str]
    common_surnames: frozenset[str]


@functools.cache
def name_lists() -> NameLists:
    """The name lists the privacy checks read (loaded once)."""
    every, common = _first_names()
    census_first, common_census_first, surnames, common_surnames = _census_names()
    return NameLists(every | census_first, common | common_census_first, surnames, common_surnames)


def never_names() -> frozenset[str]:
    """Months, weekdays and language names (lower case): never a person."""
    return _never_names()


def base_forms(word: str) -> list[str]:
    """The word and the forms it may be inflected from: "tories" -> tory, "asked" -> ask."""
    w = word.casefold()
    forms = [w]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            forms.append(w[: -len(suffix)] + repl)
    for suffix in ("ing", "est", "er"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            forms.append(w[: -len(suffix)] + "e")
            forms.append(w[: -len(suffix)])
    return forms


def is_english_word(word: str) -> bool:
    """Whether word (or the word it is inflected from) is a lower-case dictionary word."""
    words = _dictionary()
    return any(f in words for f in base_forms(word))


@dataclass(frozen=True)
class WordUse:
    """How the members write a word, as evidence of a proper noun.

    Attributes:
        lower: Uses in lower case inside a sentence.
        capitalised: Uses with a capital inside a sentence (or after a title such as "Dr.").
    """

    lower: int = 0
    capitalised: int = 0


def is_personal_name(word: str, use: WordUse | None = None) -> bool:
    """Whether a word is (likely) a person's first name or surname.

    A word of the name lists (gender-guesser's international first names; US census first
    names and surnames) that is no English word ("Fatima", "Kennedy") is a name however it
    is written. One that is also an English word counts only when it is a common name
    ("Rose", "Grace", "Smith", not "Tory" or "League") and the members mostly capitalise it
    inside sentences (`use`): "a rose garden" is about flowers. Months, weekdays and
    language names are never names.

    Args:
        word: One word.
        use: How the members write it; None when unknown (only the lists then decide).

    Returns:
        True when the word must not reach a label.
    """
    w = _POSSESSIVE.sub("", word.casefold())
    parts = [p for p in re.split("[-'\u2019]", w) if p]
    if len(parts) > 1:  # "jean-paul", "o'brien"
        return any(is_personal_name(p, use) for p in parts) or is_personal_name("".join(parts))
    if w in _never_names() or not w.isalpha():
        return False
    first, common_first = _first_names()
    census_first, common_census_first, surnames, common_surnames = _census_names()
    if w not in first and w not in census_first and w not in surnames:
        return False
    if not is_english_word(w):
        return True
    common = (common_first, common_census_first, common_surnames)
    if all(w not in names for names in common):
        return False
    return use is not None and use.capitalised > 0 and use.capitalised >= use.lower


def is_full_name(first: str, second: str) -> bool:
    """Whether two words read as a first name and a surname ("henry spencer"), however written.

    Lower-cased text gives no capitals to tell "Rose" from "rose"; a common first name followed
    by a common surname is read as a person even when both are also English words.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    f, s = first.casefold(), _POSSESSIVE.sub("", second.casefold())
    if f in ENGLISH_STOP_WORDS or s in ENGLISH_STOP_WORDS:
        return False  # "the north", "will be"
    _, common_first = _first_names()
    _, common_census_first, _, common_surnames = _census_names()
    return (f in common_first or f in common_census_first) and s in common_surnames


def word_uses(texts: Iterable[str]) -> dict[str, WordUse]:
    """How often each word (lower-cased key) is written lower-case or capitalised mid-sentence.

    The first word of a sentence tells nothing and is skipped; a word after a title ("Dr.
    Smith") counts as capitalised. Words in all capitals ("BBC", shouted text) are skipped.
    """
    lower: Counter[str] = Counter()
    capital: Counter[str] = Counter()
    for text in texts:
        for sentence in _SENTENCE_END.split(_TITLE_DOT.sub(r"\1", text)):
            words = _WORD.findall(sentence)
            for i, word in enumerate(words):
                key = word.casefold()
                after_title = i > 0 and words[i - 1].casefold() in _TITLES
                if after_title or (i > 0 and word[0].isupper() and not word.isupper()):
                    capital[key] += 1
                elif i > 0 and word.islower():
                    lower[key] += 1
    return {k: WordUse(lower[k], capital[k]) for k in lower.keys() | capital.keys()}


def conversations_per_word(
    texts: Sequence[str], chat_ids: Sequence[str], key: Callable[[str], str] = str.casefold
) -> Counter[str]:
    """In how many distinct conversations each word occurs, counted under `key(word)`."""
    seen: dict[str, set[str]] = {}
    for text, chat_id in zip(texts, chat_ids, strict=True):
        for word in {key(w) for w in _WORD.findall(text)}:
            seen.setdefault(word, set()).add(chat_id)
    return Counter({w: len(ids) for w, ids in seen.items()})


def _word_runs(text: str, n: int) -> set[tuple[str, ...]]:
    words = [w.casefold() for w in _WORD.findall(text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def quotes_a_member(text: str, members: Iterable[str], n: int = MAX_QUOTE_WORDS) -> bool:
    """Whether text contains n or more consecutive words of any one member (case-insensitive)."""
    runs = _word_runs(text, n)
    return bool(runs) and any(runs & _word_runs(m, n) for m in members)
