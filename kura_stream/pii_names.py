"""Personal names in free text, from the name lists and the words around them."""

from __future__ import annotations

import calendar
import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from kura_stream.pii_detectors import Span
from kura_stream.stages.name_privacy import is_english_word, name_lists, never_names

NAME = "[NAME]"

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
_CAP = re.compile(
    rf"(?<![\w@#$/\\.-])[{_UPPER}][{_LOWER}]*(?:[{_UPPER}][{_LOWER}]+)?[{_LOWER}]"
    rf"(?:['\u2019-][{_UPPER}]?[{_LOWER}]+)*(?![\w@])"
)
"""A capitalised word: "Fatima", "McDonald", "O'Brien", "Jean-Paul", "Fatima's"."""
_POSSESSIVE = re.compile("['\u2019]s$")
_TITLE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Madam)\.?[ ]+)$")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(\[*>#•\n]|\n[ ]*[-+][ ]|[.!?][\"”')\]]*)[ \t]*$")
_STRONG_CUE = re.compile(
    r"(?i)(?:\b(?:my|his|her|their|whose|customer'?s?|user'?s?|client'?s?) (?:full |first |last "
    r"|sur)?name(?: is|'s| was|:)|\bnamed|\bdear|\bsigned|\b(?:regards|sincerely|best|thanks"
    r"|cheers|yours),?[ ]*\n)[ \t]*$"
)
"""Words after which a capitalised word that is no English word is a name ("Dear Xiomara")."""
_WEAK_CUE = re.compile(
    r"(?i)\b(?:i'?m|i am|this is|it'?s|hi|hello|hey|thanks|thank you|with|and|asked|ask|tell"
    r"|told|call|called|email|e-mail|contact|cc|from|for|to|by|met|meet|meeting|about|of|"
    r"(?:my|our|his|her|their|your) (?:son|daughter|wife|husband|partner|friend|colleague|boss"
    r"|manager|brother|sister|mother|father|mom|mum|dad|client|customer|tenant|landlord"
    r"|neighbou?r|teacher|student|co-?worker|roommate|uncle|aunt|cousin|grandma|grandpa"
    r"|grandmother|grandfather|boyfriend|girlfriend|fianc[ée]e?|employee|patient|child|kid|"
    r"baby|nephew|niece|assistant|lawyer|doctor|dentist|agent))[,:]?[ \t]+$"
)
"""Words after which a capitalised word of the name lists is a name ("my son Austin")."""
_GREETING_CUE = re.compile(
    r"(?i)(?:\b(?:i'?m|i am|hi|hello|hey|dear|thanks|thank you|my (?:son|daughter|wife"
    r"|husband|friend|colleague|boss|brother|sister|mother|father)))[,:]?[ \t]+$"
)
"""Cues after which a common name that is also a word ("Grace", "Will") is the name."""
_PLACE_CUE = re.compile(r"(?i)\b(?:in|at|from|to|near|visit|visiting|around|of)[ \t]+$")
_PLACE_HEADS = frozenset(
    [
        "san",
        "santa",
        "santo",
        "são",
        "los",
        "las",
        "el",
        "la",
        "le",
        "saint",
        "st",
        "new",
        "fort",
        "port",
        "mount",
        "lake",
        "north",
        "south",
        "east",
        "west",
        "upper",
        "lower",
        "greater",
    ]
)
"""First words of place names ("San Francisco", "Los Angeles"): such a run is no person."""


@functools.cache
def places() -> frozenset[str]:
    """Countries, US/Canadian/Australian states and time-zone cities, lower case.

    Many are also first names ("Georgia", "Jordan", "Sydney"): alone, with nothing to say it
    is a person, such a word is read as the place. From pycountry (ISO 3166) and the
    time-zone database.
    """
    import pycountry

    names: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value:
                names.add(str(value).casefold())
    names |= {
        str(s.name).casefold()
        for s in pycountry.subdivisions
        if s.country_code in ("US", "CA", "AU")
    }
    for zone in zoneinfo.available_timezones():
        names |= {part.replace("_", " ").casefold() for part in zone.split("/")}
    return frozenset(names)


_NOT_NAMES = frozenset(
    [
        "dear",
        "hi",
        "hello",
        "hey",
        "thanks",
        "regards",
        "sincerely",
        "cheers",
        "best",
        "yours",
        "kind",
        "warm",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "lady",
        "lord",
        "madam",
    ]
)
"""Greetings, sign-offs and titles: they start a name's run of capitals, never belong to it."""


@functools.cache
def _stop_words() -> frozenset[str]:
    """English stop words ("The", "Will", "May"), and the greetings and titles above."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _NOT_NAMES


_ABBREVIATIONS = frozenset(
    a.casefold() for a in [*calendar.month_abbr, *calendar.day_abbr, "Sept", "Tues", "Thurs"] if a
)
"""Months and weekdays abbreviated ("Jan 5"): never a person here."""


@dataclass(frozen=True)
class _Word:
    first: bool  # in a first-name list
    surname: bool
    common: bool  # a common first name or surname
    english: bool  # a lower-case dictionary word ("rose", "will")
    never: bool  # a month, weekday, language or place


@functools.lru_cache(maxsize=65536)
def _word(word: str) -> _Word:
    w = _POSSESSIVE.sub("", word).casefold()
    lists = name_lists()
    parts = [p for p in re.split("[-'\u2019]", w) if p]
    if len(parts) > 1 and not all(p in lists.first or p in lists.surnames for p in parts):
        parts = []  # "London-based", "Block-Section": a name's parts are all names
    first = any(p in lists.first for p in parts)
    surname = any(p in lists.surnames for p in parts) or "".join(parts) in lists.surnames
    common = any(p in lists.common_first or p in lists.common_surnames for p in parts)
    never = w in never_names() or w in places() or w in _ABBREVIATIONS
    english = not parts or all(is_english_word(p) for p in parts)
    return _Word(first, surname, common, english, never)


def _runs(text: str) -> Iterator[list[re.Match[str]]]:
    """Capitalised words, grouped where one space separates them ("Fatima Khan")."""
    run: list[re.Match[str]] = []
    stop = _stop_words()
    for m in _CAP.finditer(text):
        if m.group().casefold() in stop:
            if run:
                yield run
            run = []
            continue
        if run and (m.start() - run[-1].end() != 1 or text[run[-1].end()] != " " or len(run) == 4):
            yield run
            run = []
        run.append(m)
    if run:
        yield run


def _is_full_name(words: list[_Word]) -> bool:
    """A first name then surname(s): "Fatima Khan", "Frank Wells", not "Rose Garden"."""
    head, tail = words[0], words[-1]
    if any(w.never for w in words) or not head.first:
        return False
    if not (tail.surname or not tail.english):
        return False
    if head.english and not head.common:
        return False
    return not tail.english or tail.common


def _cue_accepts(before: str, word: _Word) -> bool:
    if not (word.first or word.surname or not word.english):
        return False
    if _STRONG_CUE.search(before):
        return not word.never or word.first
    if not (word.first or word.surname):
        return False
    if _WEAK_CUE.search(before):
        if word.never or (word.english and word.common):
            return bool(_GREETING_CUE.search(before))
        return not word.english and not _PLACE_CUE.search(before)
    return False


def _lone(word: _Word) -> bool:
    """A first name alone mid-sentence: no English word, no place ("Fatima", not "Paris")."""
    return word.first and not word.english and not word.never


def name_spans(text: str) -> Iterator[Span]:
    """Personal names: one [NAME] span per run of name words.

    A run of capitalised words is a name when a title precedes it ("Dr. Okafor"), when it
    reads as a first name and a surname ("Fatima Khan"; both may be words when both are
    common names: "Frank Wells"), when a cue precedes it ("my name is", "Dear", "my son",
    "asked") and its first word is on the name lists, or, mid-sentence, when a word is a
    first name that is no English word and no place ("I asked Bartholomew").
    """
    for run in _runs(text):
        start = run[0].start()
        before = text[max(0, start - 40) : start]
        if run[0].group().casefold() in _PLACE_HEADS:
            continue
        words = [_word(m.group()) for m in run]
        if _TITLE.search(before) or (len(run) > 1 and _is_full_name(words)):
            yield Span(start, run[-1].end(), NAME)
            continue
        at_start = bool(_SENTENCE_START.search(before))
        if _cue_accepts(before, words[0]):
            end = 1
            while end < len(run) and (words[end].surname or not words[end].english):
                end += 1
            yield Span(start, run[end - 1].end(), NAME)
            run, words = run[end:], words[end:]
            at_start = False
        if not run or _PLACE_CUE.search(text, max(0, run[0].start() - 12), run[0].start()):
            continue  # "in Austin", "from Dallas": a place as often as a person
        for i, (m, word) in enumerate(zip(run, words, strict=True)):
            if not (i == 0 and at_start) and _lone(word):
                yield Span(m.start(), m.end(), NAME)
