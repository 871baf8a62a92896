"""OfflineClusterNamer: names a cluster from its distinctive key phrases, without an LLM."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kura_stream.types import ClusterLabel, Summary

logger = logging.getLogger(__name__)

VERSION = "ctfidf-v1"
"""Part of the namer's identity: bump when the phrase scoring or the label format changes."""

# A word list reads better as one string than as a 50-line set literal.
BOILERPLATE = frozenset(
    """
    user users assistant ai chatbot bot asks asked asking ask request requests requested
    requesting wants wanted want help helps helped helping conversation conversations seeks
    seeking looking looks question questions inquires inquiring inquired provide provided
    provides discuss discussed discusses discussing task topic summary typical cluster
    clusters unlike nearby phrases related please thanks thank yes okay ok hello hi hey
    like need needs needed just great sounds sure n't
    """.split()  # noqa: SIM905
)
"""Words every Clio-style summary uses ("The user asks the assistant for help with ..."),
chat fillers ("yes please, I would like ...") and the words of our own label template: they
say nothing about what a cluster is about."""

TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"
"""Words of two or more characters that start with a letter: no bare numbers."""

_CLAUSE = re.compile(r"[.;:!?,/()\[\]\n]+(?:\s|$)|[;!?/()\[\]\n]")

MAX_NAME_WORDS = 8
FALLBACK_NAME = "Miscellaneous requests"
_REPLACE_RATIO = 0.6
"""A longer phrase replaces a shorter one it contains when it scores at least this share of
it: "pandas dataframe" over "pandas" when most pandas requests are about dataframes."""


def summary_text(summary: Summary) -> str:
    """The text a namer may use: the summariser's own fields, never ids, metadata or facets."""
    parts: list[str] = []
    for part in (summary.summary, summary.request, summary.task, summary.topic):
        if part and all(part not in seen for seen in parts):
            parts.append(part)
    return "\n".join(parts)


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words and our BOILERPLATE."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS | BOILERPLATE)


def analyse(text: str) -> list[str]:
    """The 1-3-word phrases of text, built within clauses (no phrase spans a full stop).

    Stop words and boilerplate are dropped before phrases are formed, as CountVectorizer's
    own word analyser does; splitting at punctuation first keeps "error. Recipe" apart.
    """
    stop = stop_words()
    out: list[str] = []
    for clause in _CLAUSE.split(text.lower()):
        words = [w for w in re.findall(TOKEN_PATTERN, clause) if w not in stop]
        for n in (1, 2, 3):
            out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


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


def tokens(text: str) -> set[str]:
    """The lower-cased content words of text (stop words and boilerplate removed)."""
    return {w for w in re.findall(TOKEN_PATTERN, text.lower()) if w not in stop_words()}


def select_phrases(scores: Mapping[str, float], top: int) -> list[str]:
    """The best-scoring phrases, without one phrase repeating another's words.

    A phrase whose words all lie in a phrase already chosen is skipped; a phrase containing a
    chosen one replaces it when it scores at least _REPLACE_RATIO of it.

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
            if all(scores[phrase] >= _REPLACE_RATIO * scores[c] for c in inside):
                chosen[chosen.index(inside[0])] = phrase
                chosen = [c for c in chosen if c not in inside[1:]]
            continue
        if len(chosen) < top:
            chosen.append(phrase)
    return chosen


def title(phrase: str) -> str:
    """Title-case each word of a phrase ("pandas dataframe" -> "Pandas Dataframe")."""
    return " ".join(w[:1].upper() + w[1:] for w in phrase.split())


def name_from(phrases: Sequence[str], max_words: int = MAX_NAME_WORDS, max_phrases: int = 2) -> str:
    """A readable name from the top phrases: "Python Error Debugging / Pandas Dataframe"."""
    parts: list[str] = []
    words = 0
    used: set[str] = set()
    for phrase in phrases:
        n = len(phrase.split())
        if len(parts) == max_phrases or (parts and words + n > max_words):
            break
        if used & set(phrase.split()):  # "Finance Questions / Budget Finance" reads badly
            continue
        parts.append(title(" ".join(phrase.split()[:max_words])))
        used |= set(phrase.split())
        words += n
    return " / ".join(parts) if parts else FALLBACK_NAME


def slug_from(phrases: Sequence[str], max_words: int = 3) -> str:
    """A snake_case slug of up to three words from the top phrases."""
    words: list[str] = []
    for phrase in phrases:
        for word in re.findall(r"[a-z0-9]+", phrase.lower()):
            if word not in words and len(words) < max_words:
                words.append(word)
    return "_".join(words) or "miscellaneous_requests"


def listing(phrases: Sequence[str]) -> str:
    """Join phrases as "a, b and c"."""
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def shorten(text: str, limit: int = 160) -> str:
    """The first line of text, cut at a word boundary to at most `limit` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def distinctive_phrases(
    members: Sequence[str],
    contrast: Sequence[str],
    *,
    top: int = 6,
    smoothing: float = 0.05,
) -> list[str]:
    """Phrases frequent among members and rare among the contrast set (c-TF-IDF style).

    Each text counts a phrase once (binary counts, so one verbose summary does not dominate);
    r_m and r_c are the shares of member and contrast texts containing it. A phrase scores
    r_m * log((r_m + s) / (r_c + s)): its contribution to the KL divergence of the member
    class from the contrast class, so a phrase as common outside the cluster as inside scores
    0 however frequent it is. Phrases found in only one member are ignored once there are four
    members or more: a cluster's name describes what several conversations share.

    Args:
        members: Texts of the cluster's members.
        contrast: Texts of the nearest non-members (may be empty).
        top: How many phrases to return at most.
        smoothing: s, keeps the ratio finite for phrases absent from the contrast set.

    Returns:
        Up to `top` phrases, most distinctive first.
    """
    if not members:
        return []
    matrix, vocab = phrase_matrix([*members, *contrast])
    if not vocab:
        return []
    n_m = len(members)
    df_m = matrix[:n_m].sum(axis=0)
    r_m = df_m / n_m
    r_c = matrix[n_m:].sum(axis=0) / len(contrast) if contrast else np.zeros_like(r_m)
    score = r_m * np.log((r_m + smoothing) / (r_c + smoothing))
    min_df = 2 if n_m >= 4 else 1
    scores = {p: float(s) for p, s, d in zip(vocab, score, df_m, strict=True) if d >= min_df}
    return select_phrases(scores, top)


def typical(texts: Sequence[str], phrases: Sequence[str]) -> int:
    """Index of the text containing the most of `phrases` (earlier phrases weigh more)."""
    best, best_score = 0, -1.0
    for i, text in enumerate(texts):
        found = set(analyse(text))
        score = sum(1.0 / (1 + rank) for rank, p in enumerate(phrases) if p in found)
        if score > best_score:
            best, best_score = i, score
    return best


class OfflineClusterNamer:
    """Implements ClusterNamer with key phrases instead of an LLM.

    The name joins the two most distinctive phrases of the members against the contrast set
    ("Python Error Debugging / Pandas Dataframe", at most eight words); the description lists
    the top phrases and quotes the request of the member that contains most of them; the slug
    is three snake_case words. It only reads Summary text fields (`summary_text`), which the
    summariser has already scrubbed of personal details, and never chat ids or metadata.
    """

    def __init__(self, *, top_phrases: int = 6) -> None:
        """Create the namer.

        Args:
            top_phrases: How many phrases to find per cluster (the description lists them).
        """
        self._top = top_phrases

    @property
    def name(self) -> str:
        """Identity of the namer, with its version."""
        return f"offline:{VERSION}"

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        """Name `members` by the phrases that set them apart from `contrast`.

        Args:
            members: Summaries of the cluster (a bounded sample).
            contrast: Summaries of its nearest non-members (a bounded sample).

        Returns:
            The label; "Miscellaneous requests" when no phrase is shared by several members.
        """
        return label_texts(
            [summary_text(s) for s in members],
            [summary_text(s) for s in contrast],
            examples=[s.request or s.summary for s in members],
            top_phrases=self._top,
        )


def label_texts(
    members: Sequence[str],
    contrast: Sequence[str],
    *,
    examples: Sequence[str] | None = None,
    top_phrases: int = 6,
) -> ClusterLabel:
    """The offline label of a group of texts against a contrast set (see OfflineClusterNamer).

    Args:
        members: Texts of the group.
        contrast: Texts of nearby non-members.
        examples: What to quote as the typical request of each member (default: the text).
        top_phrases: How many phrases to find.

    Returns:
        The label.
    """
    phrases = distinctive_phrases(members, contrast, top=top_phrases)
    if phrases:
        description = f"Conversations about {listing(phrases)}."
    else:
        description = "Conversations with no phrase shared by several of them."
    quotes = list(examples) if examples is not None else list(members)
    if quotes:
        quote = shorten(quotes[typical(members, phrases)])
        if quote:
            description += f" Typical request: {quote}"
    return ClusterLabel(name=name_from(phrases), description=description, slug=slug_from(phrases))
