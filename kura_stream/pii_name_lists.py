"""The name lists behind `pii_names`: first names, surnames, places, stop words, per word."""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass

from kura_stream.pii_addresses import STREET_TYPES
from kura_stream.stages.name_privacy import is_english_word, name_lists, never_names

POSSESSIVE = re.compile("['\u2019]s$")


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
    """
dear hi hello hey thanks regards sincerely cheers best yours kind warm mr mrs ms miss mx
dr prof sir dame lady lord madam
""".split()  # noqa: SIM905
)
"""Greetings, sign-offs and titles: they start a name's run of capitals, never belong to it."""


@functools.cache
def stop_words() -> frozenset[str]:
    """English stop words ("The", "Will", "May"), and the greetings and titles above."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _NOT_NAMES


_ABBREVIATIONS = frozenset(
    a.casefold() for a in [*calendar.month_abbr, *calendar.day_abbr, "Sept", "Tues", "Thurs"] if a
)
"""Months and weekdays abbreviated ("Jan 5"): never a person here."""


@dataclass(frozen=True)
class Word:
    """What the lists say of one capitalised word."""

    first: bool  # in a first-name list
    surname: bool
    common: bool  # a common first name or surname
    english: bool  # a lower-case dictionary word ("rose", "will")
    never: bool  # a month, weekday, language or place
    place_type: bool = False  # "Park", "Lane", "College": ends a place's name


_MORE_PLACE_TYPES = """
bay island isle center centre college university school academy institute river beach city
county district hall house market tower bridge castle airport museum church cathedral temple
zoo theatre theater hospital stadium arena hotel restaurant cafe club lake canyon valley cave
caves gallery library palace garden gardens bar pub
"""


@functools.cache
def _place_types() -> frozenset[str]:
    """Words that end a place's name: street types and kinds of building or landscape."""
    return frozenset(STREET_TYPES | set(_MORE_PLACE_TYPES.split()))


def _fold(word: str) -> str:
    """The word without accents ("émilie" -> "emilie"): the lists spell some names so."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _listed(part: str, names: frozenset[str]) -> bool:
    return part in names or _fold(part) in names


@functools.lru_cache(maxsize=65536)
def word(word: str) -> Word:
    """Look a word up ("Fatima", "O'Brien", "Jean-Paul", "Émilie's"), with and without accents."""
    w = POSSESSIVE.sub("", word).casefold()
    lists = name_lists()
    # One-letter parts ("o'brien", "d'angelo") are prefixes, not names to look up.
    parts = [p for p in re.split("[-'\u2019]", w) if len(p) > 1]
    if len(parts) > 1 and not all(
        _listed(p, lists.first) or _listed(p, lists.surnames) for p in parts
    ):
        parts = []  # "London-based", "Block-Section": a name's parts are all names
    first = any(_listed(p, lists.first) for p in parts)
    surname = any(_listed(p, lists.surnames) for p in parts) or "".join(parts) in lists.surnames
    # Each set on its own: their union was built for every part (0.5 ms, 11,670 | 3,000 names).
    common = any(_listed(p, lists.common_first) or _listed(p, lists.common_surnames) for p in parts)
    never = w in never_names() or w in places() or w in _ABBREVIATIONS
    english = not parts or all(is_english_word(p) for p in parts)
    return Word(first, surname, common, english, never, w in _place_types())
