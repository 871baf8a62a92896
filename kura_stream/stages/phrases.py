"""Key phrases of short texts: stop words, phrase analysers, selection and readable joins."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kura_stream.stages.name_privacy import base_forms, is_english_word

# A word list reads better as one string than as a 50-line set literal.
BOILERPLATE = frozenset(
    """
    user users assistant ai chatbot bot asks asked asking ask request requests requested
    requesting wants wanted want help helps helped helping conversation conversations seeks
    seeking looking looks question questions inquires inquiring inquired provide provided
    provides discuss discussed discusses discussing task topic summary typical cluster
    clusters unlike nearby phrases related please thanks thank yes okay ok hello hi hey
    like need needs needed just great sounds sure n't overall members mostly
    ve ll re don didn doesn isn wasn aren couldn wouldn shouldn haven hasn won im ive
    know tell make makes does did doing think say says said got let really actually good
    right fine sorry sound going mention mentions miscellaneous assorted shared
    doesn't don't can't isn't won't didn't i'm i've it's that's there's what's let's
    explain explained example examples using use used point rest
    """.split()  # noqa: SIM905
)
"""Words every Clio-style summary uses ("The user asks the assistant for help with ..."),
chat fillers ("yes please, I would like ..."), the pieces of split contractions ("I ' ve")
and the words of our own label templates: they say nothing about what a cluster is about."""

CONTENT_STOP_WORDS = frozenset(
    """
    bill fire interest system detail mill thick thin serious sincere empty full front bottom
    side computer
    """.split()  # noqa: SIM905
)
"""Words of scikit-learn's stop list that name things ("interest rates", "solar system")."""

CONNECTORS = frozenset("of to in for on with and or at from by the a an".split())  # noqa: SIM905
"""Small words that may stand inside a readable phrase ("place to stay", "centre of town")."""

TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"
"""Words of two or more characters that start with a letter: no bare numbers."""

_TOKEN = re.compile(TOKEN_PATTERN)
_JOINS = frozenset({"and", "or"})
_GAP = re.compile(r"\s+(?:[^\W\d_]\s+)?")
_CLAUSE = re.compile(r"[.;:!?,/()\[\]\n]+(?:\s|$)|[;!?/()\[\]\n]")

_NOISE = re.compile(
    r"\S+@\S+|\b(?:https?://|www\.)\S+"  # emails, message ids, URLs
    r"|\b(?:[\w-]+\.)+(?:com|net|org|edu|gov|mil|io|uk|de|ca|au|us|info|biz)\b"  # domains
    r"|\b(?=[\w-]*\d)(?=[\w-]*[^\W\d_])[\w-]+\b",  # ids mixing letters and digits: "TR1234"
    re.IGNORECASE,
)
_BARE_DOMAIN = re.compile(r"(?:\b[a-z][\w-]*\s+){1,3}(?:edu|com|gov|org|net)\b(?!\s+[a-z])")
"""A domain whose dots a cleaner turned into spaces, at a clause's end or before a capital or
punctuation: "henry zoo toronto edu", "access digex net" (never "a fishing net and rod")."""
_HOSTS = re.compile(r"\b(?:[a-z][\w-]*\s+){0,3}(?:edu|com|gov|org)\b(?=\s+[a-z])")
"""The same inside a run of lower-case words, for the TLDs that are no English word."""

REPLACE_RATIO = 0.6
"""A longer phrase replaces a shorter one it contains when it scores at least this share of
it: "pandas dataframe" over "pandas" when most pandas requests are about dataframes."""


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (less a few nouns) and our BOILERPLATE."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset((ENGLISH_STOP_WORDS - CONTENT_STOP_WORDS) | BOILERPLATE)


def unshout(text: str) -> str:
    """Text in lower case when it is mostly written in capitals ("I PLAY SOCCER")."""
    letters = [c for c in text if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return text.lower() if letters and upper > 0.6 * len(letters) and len(letters) > 3 else text


def scrub(text: str) -> str:
    """Text without emails, URLs, domains (dotted or not) and ids mixing letters and digits.

    Each becomes a clause break, so no phrase spans the gap ("henry zoo toronto" from
    "henry@zoo.toronto.edu" never forms).
    """
    text = _NOISE.sub(" ; ", unshout(text))
    return _HOSTS.sub(" ; ", _BARE_DOMAIN.sub(" ; ", text))


def participle(word: str) -> bool:
    """Whether a lower-case word reads as a verb's -ing or -ed form ("leaving", "called")."""
    for suffix in ("ing", "ed"):
        stem = word.removesuffix(suffix)
        if stem != word and len(stem) > 2:
            bases = (stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem)
            return any(is_english_word(b) and b != word for b in bases)
    return False


def clauses(text: str) -> list[str]:
    """Text cut at punctuation, so that no phrase spans a full stop or a comma."""
    return [c for c in _CLAUSE.split(text) if c.strip()]


def analyse(text: str) -> list[str]:
    """The 1-3-word phrases of text, built within clauses (no phrase spans a full stop).

    Stop words and boilerplate are dropped before phrases are formed, as CountVectorizer's
    own word analyser does; splitting at punctuation first keeps "error. Recipe" apart.
    """
    stop = stop_words()
    out: list[str] = []
    for clause in clauses(text.lower()):
        words = [w for w in _TOKEN.findall(clause) if w not in stop]
        for n in (1, 2, 3):
            out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


def lemma(word: str) -> str:
    """A crude singular of a lower-case word, to merge "tories"/"tory", "colors"/"color"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ws")):
        return word[:-1]
    return word


def readable_phrases(text: str, max_words: int = 4, *, joins: bool = True) -> list[str]:
    """The phrases of text as written: 1-4 consecutive words within a clause.

    A phrase starts and ends with a content word; inside it, only CONNECTORS (and one-letter
    words) may stand, at most two of them ("place to stay", "book a table", "phone number
    and address"). Phrases keep their case and spacing; `phrase_key` says which count as one.
    With joins=False, "and" and "or" end a phrase (parents read child names "a and b").
    """
    stop = stop_words()
    out: list[str] = []
    for clause in clauses(text):
        found = list(_TOKEN.finditer(clause))
        low = [m.group().casefold() for m in found]
        for i, first in enumerate(low):
            if first in stop:
                continue
            small = 0
            for j in range(i, min(len(found), i + max_words)):
                if j > i and not _GAP.fullmatch(clause[found[j - 1].end() : found[j].start()]):
                    break  # a number or a symbol between words: "table for 2 people"
                if low[j] in stop:
                    if low[j] not in CONNECTORS or small == 2 or (not joins and low[j] in _JOINS):
                        break
                    small += 1
                    continue
                out.append(" ".join(clause[found[i].start() : found[j].end()].split()))
    return out


def phrase_key(phrase: str) -> str:
    """The form a phrase is counted under: its words in lower case and singular."""
    return " ".join(lemma(w.casefold()) for w in _TOKEN.findall(phrase))


def content_words(phrase: str) -> set[str]:
    """The singular content words of a phrase (connectors left out)."""
    return {lemma(w) for w in phrase.casefold().split() if w not in CONNECTORS}


def phrase_matrix(texts: Sequence[str]) -> tuple[npt.NDArray[np.float64], list[str]]:
    """Which 1-3-word phrases (English stop words and boilerplate removed) each text contains.

    Args:
        texts: The documents.

    Returns:
        A dense 0/1 matrix (len(texts), n_phrases) and the phrases, sorted alphabetically.
        Both are empty when no text has a word left after stop-word removal.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer=analyse, binary=True)
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # "empty vocabulary": nothing but stop words
        return np.zeros((len(texts), 0)), []
    phrases: list[str] = vectorizer.get_feature_names_out().tolist()
    return np.asarray(matrix.toarray(), dtype=np.float64), phrases


def readable_matrix(
    texts: Sequence[str], *, joins: bool = True
) -> tuple[npt.NDArray[np.float64], list[str], dict[str, str]]:
    """Which readable phrases (`readable_phrases`, merged by `phrase_key`) each text contains.

    Returns:
        A 0/1 matrix (len(texts), n_keys), the keys sorted, and each key's most frequent
        written form (ties: alphabetical).
    """
    found = [{phrase_key(p): p for p in readable_phrases(t, joins=joins)} for t in texts]
    written: dict[str, Counter[str]] = {}
    for phrases in found:
        for key, phrase in phrases.items():
            written.setdefault(key, Counter())[phrase] += 1
    keys = sorted(written)
    index = {k: i for i, k in enumerate(keys)}
    matrix = np.zeros((len(texts), len(keys)))
    for row, phrases in enumerate(found):
        matrix[row, [index[k] for k in phrases]] = 1.0
    shown = {k: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for k, c in written.items()}
    return matrix, keys, shown


def tokens(text: str) -> set[str]:
    """The lower-cased content words of text (stop words and boilerplate removed)."""
    return {w for w in _TOKEN.findall(text.lower()) if w not in stop_words()}


def select_phrases(scores: Mapping[str, float], top: int) -> list[str]:
    """The best-scoring phrases, without one phrase repeating another's words.

    A phrase whose words all lie in a phrase already chosen is skipped; a phrase containing a
    chosen one replaces it when it scores at least REPLACE_RATIO of it.

    Args:
        scores: Phrase -> score (higher is better); only positive scores are considered.
        top: How many phrases to return at most.

    Returns:
        Up to `top` phrases, best first.
    """
    ranked = sorted(
        (p for p, s in scores.items() if s > 0),
        key=lambda p: (-round(scores[p], 9), -len(p.split()), p),
    )[: max(50, 10 * top)]
    chosen: list[str] = []
    for phrase in ranked:
        words = set(phrase.split())
        if any(words <= set(c.split()) for c in chosen):
            continue
        inside = [c for c in chosen if set(c.split()) < words]
        if inside:
            if all(scores[phrase] >= REPLACE_RATIO * scores[c] for c in inside):
                chosen[chosen.index(inside[0])] = phrase
                chosen = [c for c in chosen if c not in inside[1:]]
            continue
        if len(chosen) < top:
            chosen.append(phrase)
    return chosen


def title(phrase: str) -> str:
    """Title-case each word of a phrase ("pandas dataframe" -> "Pandas Dataframe")."""
    return " ".join(w[:1].upper() + w[1:] for w in phrase.split())


def sentence_case(text: str) -> str:
    """Text with its first letter upper-cased and the rest as it was ("Python errors")."""
    return text[:1].upper() + text[1:]


def listing(phrases: Sequence[str]) -> str:
    """Join phrases as "a, b and c"."""
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def join_name(
    phrases: Sequence[str], *, prefix: str = "", max_words: int = 8, max_phrases: int = 2
) -> str:
    """A name like a person writes it: "<prefix><head>, <second> and <third>", at most max_words.

    The head is the first phrase; each later phrase sharing no content word with those taken
    (so never "Tory and tories") joins while it fits, up to max_phrases in all. A phrase that
    is itself "a and b" counts as its parts ("book, writing and literature", never "book and
    writing and literature"). Never two keywords joined by a slash.

    Args:
        phrases: Display phrases, best first; the caller has checked them.
        prefix: What comes first, e.g. "Questions about "; dropped when it does not fit.
        max_words: Word limit of the whole name.
        max_phrases: How many phrases the name may list.

    Returns:
        The name, sentence-cased; "" when there is no phrase.
    """
    if not phrases:
        return ""
    head = " ".join(phrases[0].split()[:max_words])
    if len(prefix.split()) + len(head.split()) > max_words:
        prefix = ""
    taken = [head]
    used = len(prefix.split()) + len(head.split())
    for other in phrases[1:]:
        if len(taken) >= max_phrases:
            break
        if any(_stems(other) & _stems(t) for t in taken):
            continue  # never "Tory and tories" nor "Leaving and leave"
        if used + 1 + len(other.split()) <= max_words:
            taken.append(other)
            used += 1 + len(other.split())
        elif len(taken) == 1:
            break
    parts = [part for t in taken for part in (t.split(" and ") if t.count(" and ") == 1 else [t])]
    return sentence_case(prefix + listing(parts))


def _stems(phrase: str) -> set[str]:
    return {f for w in content_words(phrase) for f in base_forms(w)}


def slug_from(phrases: Sequence[str], max_words: int = 3) -> str:
    """A snake_case slug of up to three content words from the top phrases."""
    words: list[str] = []
    for phrase in phrases:
        for word in re.findall(r"[a-z0-9]+", phrase.lower()):
            if word not in words and word not in CONNECTORS and len(words) < max_words:
                words.append(word)
    return "_".join(words) or "miscellaneous_requests"
