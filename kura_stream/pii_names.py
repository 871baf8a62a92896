"""Personal names in free text, from the name lists and the words around them."""

from __future__ import annotations

import re
from collections.abc import Iterator

from kura_stream.pii_detectors import LOWER, UPPER, Span
from kura_stream.pii_name_lists import POSSESSIVE as _POSSESSIVE
from kura_stream.pii_name_lists import Word as _Word
from kura_stream.pii_name_lists import places
from kura_stream.pii_name_lists import stop_words as _stop_words
from kura_stream.pii_name_lists import word as _word

NAME = "[NAME]"

_UPPER = UPPER  # Latin with its extensions and Cyrillic: "Żal", "Strzępek"
_LOWER = LOWER
_CAP = re.compile(
    rf"(?<![\w@#$/\\.-])(?:[{_UPPER}]['\u2019](?=[{_UPPER}]))?[{_UPPER}][{_LOWER}]*"
    rf"(?:[{_UPPER}][{_LOWER}]+)?[{_LOWER}](?:['\u2019-][{_UPPER}]?[{_LOWER}]+)*(?![\w@])"
)
"""A capitalised word: "Fatima", "McDonald", "O'Brien", "Jean-Paul", "Fatima's"."""
_PARTICLES = "van von de der den du da di del della dos das do ter ten le la zu bin ibn al"
_PARTICLE = rf"(?i:{'|'.join(_PARTICLES.split())})"
_PARTICLE_TAIL = re.compile(rf"(?:[ ]{_PARTICLE}){{1,3}}[ ](?=[{_UPPER}])")
"""What joins a name to more of it: "van der" (Lisanne van der Sande), "de", "De" (Jan De
Ridder, in Belgium), "bin"; only when a capitalised word follows: "Luc de" alone is none."""
_SIGN_OFF = re.compile(
    r"(?i)\b(?:regards|sincerely|best|best wishes|thanks|thank you|many thanks|cheers|yours"
    r"|yours truly|faithfully|warmly|love|respectfully)[,.!]?[ \t]*\n?[ \t]*$"
)
"""Sign-offs: a line of capitalised words after one, and nothing else, is a signature."""
_SIGNATURE_TAIL = re.compile(rf"{_PARTICLE_TAIL.pattern}|[ ](?:the|The)[ ](?=[{_UPPER}])")
"""In a signature line, "the" joins too ("Mohammed The Elder")."""
_STOP_SURNAME = re.compile(rf"[ ]([{_UPPER}][{_LOWER}]+)(?=[,;:!?)]|\.(?:\s|$)|[ \t]*(?:\n|$))")
_PLACE_AFTER = re.compile(r",[ ]+([A-Z][A-Za-z]+(?:[ ][A-Z][a-z]+)?)\b")
_ACRONYM_BEFORE = re.compile(r"\b[A-Z]{2,}[ ]$")
_LINE_END = re.compile(r"[ \t]*[.!]?[ \t]*(?:\n|$)")
_LOWER_NAME = re.compile(
    r"(?i)\b(?:my|his|her|their) (?:full |first |last |sur)?name(?: is|'s|:)[ \t]+"
    rf"(?-i:([{_LOWER}][{_LOWER}'-]+)(?:[ ]([{_LOWER}][{_LOWER}'-]+))?)"
)
"""A name written in lower case after "my name is" ("my name is john smith")."""
_TITLE = re.compile(
    rf"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Madam)\.?[ ]+(?:{_PARTICLE}[ ]+)*)$"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(\[*>#•\n]|\n[ ]*[-+][ ]|[.!?][\"”')\]]*)[ \t]*$")
_STRONG_CUE = re.compile(
    r"(?i)(?:\b(?:my|his|her|their|whose|customer'?s?|user'?s?|client'?s?) (?:full |first |last "
    r"|sur)?name(?: is|'s| was|:)|\bnamed|\bdear|\bsign(?:ed)?(?: it| this| off)?(?: from| as| by)?"
    r"|\b(?:regards|sincerely|best|thanks|cheers|yours),?[ ]*\n)[ \t]*$"
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
_PERSON_CUE = re.compile(
    r"(?i)\b(?:my|our|his|her|their|your) (?:son|daughter|wife|husband|partner|friend|colleague"
    r"|boss|manager|brother|sister|mother|father|mom|mum|dad|client|customer|tenant|landlord"
    r"|neighbou?r|teacher|student|co-?worker|roommate|uncle|aunt|cousin|grandma|grandpa"
    r"|grandmother|grandfather|boyfriend|girlfriend|fianc[ée]e?|employee|patient|child|kid"
    r"|baby|nephew|niece|assistant|lawyer|doctor|dentist|agent),?[ \t]+$"
)
"""A person's role: the capitalised word after it that is no English word is their name
("my colleague Arnaude"), on the name lists or not."""
_PLACE_CUE = re.compile(r"(?i)\b(?:in|at|from|to|near|visit|visiting|around|of)[ \t]+$")
_PLACE_HEADS = frozenset(
    """
san santa santo são los las el la le saint st new fort port mount lake north south east
west upper lower greater
""".split()  # noqa: SIM905
)
"""First words of place names ("San Francisco", "Los Angeles"): such a run is no person."""


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
        if _POSSESSIVE.search(m.group()):  # "Esther's Crown": a name ends at its 's
            yield run
            run = []
    if run:
        yield run


def _is_full_name(words: list[_Word], cued: bool = False) -> bool:
    """A first name then surname(s): "Fatima Khan", "Frank Wells", not "Rose Garden".

    A place or month that is also a first name needs a surname that is no word after it, or
    a common one after a cue ("from Jordan Parker"); a run ending in a place's type ("Park",
    "College") is a place.
    """
    head, tail = words[0], words[-1]
    two = len(words) == 2
    if not head.first or (
        tail.place_type and not (two and tail.common and not head.english and not head.never)
    ):
        return False  # "Stanley Park", "Houston Community College"; but "Keith Hill"
    if any(w.never for w in words[1:]) and not (two and not head.english):
        return False  # "Maha Chemicals Asia"; but "Edward Davis" (Davis, Antarctica)
    if head.never and not (tail.surname and (not tail.english or (cued and tail.common))):
        return False  # "Stanley Brady", "June Craig"; not "Paris Street", "May Day"
    if not (tail.surname or not tail.english):
        return False
    if head.english and not head.common:
        return False
    # A first name that is no word ("Debra") takes any surname after it ("Birch"); one that
    # is ("Rose") only a surname that is no word or a common one ("Rose Smith").
    return not tail.english or tail.common or (two and not head.english)


def _cue(before: str, word: _Word) -> int:
    """How surely the words before make `word` a name: 0 not, 1 a weak cue, 2 a strong one."""
    if not (word.first or word.surname or not word.english):
        return 0
    if _PERSON_CUE.search(before):  # "my colleague Arnaude", not "our BOSS Model"
        return 2 if word.first or not word.english else 0
    if _STRONG_CUE.search(before):
        return 2 if not word.never or word.first else 0
    if not (word.first or word.surname) or not _WEAK_CUE.search(before):
        return 0
    if word.never or (word.english and word.common):
        return 1 if _GREETING_CUE.search(before) else 0
    return 1 if not word.english and not _PLACE_CUE.search(before) else 0


def _lone(word: _Word) -> bool:
    """A first name alone mid-sentence: no English word, no place ("Fatima", not "Paris")."""
    return word.first and not word.english and not word.never


def _extend(text: str, end: int, tail: re.Pattern[str] = _PARTICLE_TAIL) -> int:
    """Where a name ending at `end` really ends: "Lisanne| van der Sande" -> after "Sande".

    A surname that is a stop word ("Joel May", "Beverley Lord") is taken when the phrase
    ends after it: "Joel May, phone ...", not "ask Joel May I ...".
    """
    while (joint := tail.match(text, end)) and (cap := _CAP.match(text, joint.end())):
        if cap.group().casefold() in _stop_words():
            break
        end = cap.end()
    last = _STOP_SURNAME.match(text, end)
    if last and last.group(1).casefold() in _stop_words() and _word(last.group(1)).surname:
        end = last.end()
    return end


def _signature(text: str, start: int, end: int) -> int | None:
    r"""The end of a signature: capitalised words filling a line after a sign-off ("Regards,").

    "Thanks, Cord Bähr", "Regards,\nIndy van der Heyden": the whole line is the name when
    one of its words is a name or no English word, and not all are places.
    """
    if not _SIGN_OFF.search(text, max(0, start - 40), start):
        return None
    end = _extend(text, end, _SIGNATURE_TAIL)
    if not _LINE_END.match(text, end):
        return None
    words = [_word(m.group()) for m in _CAP.finditer(text, start, end)]
    if all(w.never for w in words) or not any(w.first or not w.english for w in words):
        return None
    return end


def _lower_case_spans(text: str) -> Iterator[Span]:
    """Names written in lower case after "my name is": on the name lists, no stop word."""
    if "name" not in text and "Name" not in text and "NAME" not in text:
        return  # three scans in C; the pattern's search costs more on every text
    stop = _stop_words()
    for m in _LOWER_NAME.finditer(text):
        first = _word(m.group(1))
        if m.group(1) in stop or not (first.first or first.surname):
            continue
        end = m.end(1)
        second = m.group(2)
        if second and second not in stop and (_word(second).surname or _word(second).first):
            end = m.end(2)
        yield Span(m.start(1), end, NAME)


def _is_place_at(text: str, start: int, end: int) -> bool:
    """Whether the words around say place: "Dallas, Texas", "Austin, TX", "UT Austin"."""
    after = _PLACE_AFTER.match(text, end)
    if after and (after.group(1).isupper() or after.group(1).casefold() in places()):
        return True
    return bool(_ACRONYM_BEFORE.search(text, max(0, start - 8), start))


def _run_spans(text: str, run: list[re.Match[str]]) -> Iterator[Span]:
    """The names in one run of capitalised words (see `name_spans`)."""
    start = run[0].start()
    before = text[max(0, start - 40) : start]
    if run[0].group().casefold() in _PLACE_HEADS:
        return
    words = [_word(m.group()) for m in run]
    signed = _signature(text, start, run[-1].end())
    if signed is not None:
        yield Span(start, signed, NAME)
        return
    if not any(w.first or w.surname or not w.english for w in words):
        # No name word and no unknown one ("The Quick Brown"): only a title makes a name of
        # it, and the cue searches below are skipped (most runs end here).
        if before.endswith(" ") and _TITLE.search(before):
            yield Span(start, _extend(text, run[-1].end()), NAME)
        return
    full = len(run) > 1 and (
        _is_full_name(words)
        or (  # the cues only matter to a place that is also a first name: "Jordan Parker"
            words[0].never
            and _is_full_name(
                words, any(c.search(before) for c in (_STRONG_CUE, _PERSON_CUE, _WEAK_CUE))
            )
        )
    )
    if full or _TITLE.search(before):
        yield Span(start, _extend(text, run[-1].end()), NAME)
        return
    at_start = bool(_SENTENCE_START.search(before))
    if cue := _cue(before, words[0]):
        end = 1  # after a strong cue ("my colleague Victoire Bigot") any capitalised word
        while end < len(run) and (
            words[end].surname or not words[end].english or (cue == 2 and not words[end].never)
        ):
            end += 1
        tail = _SIGNATURE_TAIL if cue == 2 else _PARTICLE_TAIL  # "my colleague X the Elder"
        yield Span(start, _extend(text, run[end - 1].end(), tail), NAME)
        run, words = run[end:], words[end:]
        at_start = False
    if not run:
        return
    place = _PLACE_CUE.search(text, max(0, run[0].start() - 12), run[0].start()) or _is_place_at(
        text, run[0].start(), run[-1].end()
    )
    for i, (m, word) in enumerate(zip(run, words, strict=True)):
        if (i == 0 and at_start) or not _lone(word):
            continue
        end = _extend(text, m.end())
        if place and end == m.end():
            continue  # "in Austin", "from Dallas": a place as often as a person
        yield Span(m.start(), end, NAME)


def name_spans(text: str) -> Iterator[Span]:
    r"""Personal names: one [NAME] span per run of name words.

    A run of capitalised words is a name when a title precedes it ("Dr. Okafor"), when it
    reads as a first name and a surname ("Fatima Khan"; both may be words when both are
    common names: "Frank Wells"), when a cue precedes it ("my name is", "Dear", "my son",
    "asked") and its first word is on the name lists (after a person's role, "my colleague",
    any word that is no English word), when it fills the line after a sign-off ("Regards,\n
    Indy van der Heyden"), or, mid-sentence, when a word is a first name that is no English
    word and no place ("I asked Bartholomew"). Surname particles ("van der", "de") join the
    words around them; a name in lower case counts after "my name is" ("my name is john").
    Names are looked up with and without accents ("Émilie").
    """
    yield from _lower_case_spans(text)
    covered = 0
    for run in _runs(text):
        if run[0].start() < covered:
            continue  # taken by the name before it ("van der Sande" after "Lisanne")
        for span in _run_spans(text, run):
            covered = max(covered, span.end)
            yield span
