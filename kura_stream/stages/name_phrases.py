"""A cluster's distinctive, readable and privacy-checked phrases, for the offline namers."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kura_stream.stages.name_privacy import (
    MIN_CONVERSATIONS,
    WordUse,
    conversations_per_word,
    is_english_word,
    is_full_name,
    is_personal_name,
    quotes_a_member,
    word_uses,
)
from kura_stream.stages.phrases import (
    BOILERPLATE,
    content_words,
    lemma,
    participle,
    phrase_key,
    readable_phrases,
    scrub,
    select_phrases,
)
from kura_stream.types import ClusterLabel

LONGER_BONUS = 0.5
"""Each content word past the first adds this share to a phrase's score: "free parking" reads
better than "free", and "place to stay" than "place", when nearly as distinctive."""

_VERB_CUES = frozenset(
    """
    i you we they he she can could will would should must might shall do does did don't
    is are was were be been being to please let's lets also not well best
    """.split()  # noqa: SIM905
)
"""Words after which a word is mostly a verb ("can you write", "is known", "to book")."""
_REQUEST_CUES = frozenset("you please to let's lets me".split())  # noqa: SIM905
"""Words after which a verb is what the user asks of the assistant ("can you write")."""
_VERB_SHARE = 0.5
_WORD = re.compile(r"(?u)[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")
_SHARED_TASK = 0.6
"""A task field this share of the members give is what the cluster asks."""
QUESTION_SHARE = 0.5
"""When this (centrality-weighted) share of requests are questions, the name says so."""
_QUESTION_WORDS = frozenset(
    """
    what who whom whose which when where why how is are was were do does did can could
    should would will may shall have has
    """.split()  # noqa: SIM905
)
_OPENING_SHARE = 0.3
"""A way of starting the request this share of the members use names a cluster that shares no
topic phrase ('"You are …" messages')."""
_OPENING_WORDS = (2, 4)
_TASK_LEAD = re.compile(r"^(?:the )?(?:user'?s? )?(?:overall )?(?:task|request) (?:is )?to ", re.I)
CONTRAST_PENALTY = 1.0
"""How much a phrase's share of the contrast texts lowers its score beyond the KL term: a
phrase most neighbours use too ("writes in article") says little of this cluster."""
VERB_PENALTY = 0.5
"""The score share kept by a word the members mostly use as a verb but do not ask for
("leaving", "called"): nouns name a cluster better."""


def centrality_weights(n: int) -> npt.NDArray[np.float64]:
    """Weights of members given nearest-the-centroid first: 2 for the first, down to 1."""
    if n <= 1:
        return np.ones(max(n, 0))
    return 2.0 - np.arange(n) / (n - 1)


def verb_like(texts: Sequence[str]) -> tuple[set[str], set[str]]:
    """Lower-case words that mostly follow a pronoun, modal, "to", "is" or an adverb: verbs.

    "write" in "can you write ...", "known" in "is known as" or "commonly known". Capitalised
    uses ("to Cambridge") are not counted: proper nouns follow "to" as often as verbs do.

    Returns:
        The verbs, and those of them that are mostly asked of the assistant ("can you
        write", "please book", "I need to book"): the verbs a name may lead with.
    """
    after_cue: Counter[str] = Counter()
    asked: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for text in texts:
        words = _WORD.findall(text)
        for prev, word in itertools.pairwise(words):
            if word[:1].isupper():
                continue
            cue = prev.casefold()
            seen[word] += 1
            after_cue[word] += cue in _VERB_CUES or (len(cue) > 3 and cue.endswith("ly"))
            asked[word] += cue in _REQUEST_CUES
    verbs = {w for w, n in seen.items() if n >= 2 and after_cue[w] >= _VERB_SHARE * n}
    return verbs, {w for w in verbs if asked[w] >= _VERB_SHARE * seen[w]}


@dataclass(frozen=True)
class Phrase:
    """A phrase that may reach a label.

    Attributes:
        key: What variants count under (lower case, singular): "place to stay".
        text: How it is shown, as most members write it: "places to stay", "Python".
        score: How much it sets the members apart from the contrast set.
        conversations: Distinct member conversations containing it.
        verb: A single word that the members mostly use as a verb ("known", "write").
        asked: A verb that the members mostly ask the assistant to do ("write", "book").
    """

    key: str
    text: str
    score: float
    conversations: int
    verb: bool = False
    asked: bool = False


@dataclass(frozen=True)
class Evidence:
    """What the privacy checks know of the members' words.

    Attributes:
        counts: Distinct conversations per word, under its singular lower-case form (a
            plural is the same word: "colors" counts the conversations with "color").
        uses: How the members capitalise each word (evidence of a proper noun).
        min_conversations: Distinct conversations each shown word needs.
    """

    counts: Counter[str]
    uses: dict[str, WordUse]
    min_conversations: int = MIN_CONVERSATIONS

    @classmethod
    def of(cls, texts: Sequence[str], chat_ids: Sequence[str], minimum: int) -> Evidence:
        """The evidence of member texts, one conversation per chat id."""
        counts = conversations_per_word(texts, chat_ids, key=lambda w: lemma(w.casefold()))
        return cls(counts, word_uses(texts), minimum)

    def allows(self, text: str) -> bool:
        """Whether every word of text is used by enough conversations and is no name."""
        words = [w.casefold() for w in _WORD.findall(text)]
        if any(is_full_name(a, b) for a, b in itertools.pairwise(words)):
            return False
        return bool(words) and all(
            self.counts[lemma(w)] >= self.min_conversations
            and not is_personal_name(w, self.uses.get(w))
            for w in words
        )


def evidence_checks(texts: Sequence[str], chat_ids: Sequence[str], minimum: int) -> Evidence:
    """`Evidence.of` the texts as the phrases see them (see `scrub`)."""
    return Evidence.of([scrub(t) for t in texts], chat_ids, minimum)


def display(variants: Counter[str], evidence: Evidence) -> str | None:
    """The most frequent written form of a phrase whose every word passes the checks.

    Words are lower-cased unless the members write them in capitals and they are no English
    word ("ID", "SQL"), or capitalise them mid-sentence at least as often as not and they are
    no English word ("Python") or all the phrase's words are so ("Premier League", but
    "police station" from "Parkside Police Station").
    """
    by_fold: Counter[str] = Counter()
    raw: dict[str, Counter[str]] = {}
    for variant, n in variants.items():
        by_fold[variant.casefold()] += n
        raw.setdefault(variant.casefold(), Counter())[variant] += n
    for folded, _ in sorted(by_fold.items(), key=lambda kv: (-kv[1], kv[0])):
        if not evidence.allows(folded):
            continue
        written = raw[folded].most_common(1)[0][0].split()
        proper = [_proper(w, evidence.uses.get(w.casefold(), WordUse())) for w in written]
        keep = [
            (w.isupper() and len(w) > 1) or (p and all(proper)) or not is_english_word(w)
            for w, p in zip(written, proper, strict=True)
        ]
        return " ".join(
            w if k and (p or w.isupper()) else w.casefold()
            for w, p, k in zip(written, proper, keep, strict=True)
        )
    return None


def _proper(word: str, use: WordUse) -> bool:
    """Whether the members write a word capitalised mid-sentence at least as often as not."""
    return word[:1].isupper() and use.capitalised >= max(1, use.lower)


def _count(
    members: Sequence[str], ids: Sequence[str]
) -> tuple[dict[str, float], dict[str, set[str]], dict[str, Counter[str]]]:
    """Per phrase key: the weighted share of members, their conversations, written forms."""
    weights = centrality_weights(len(members))
    total = float(weights.sum())
    share: dict[str, float] = {}
    convs: dict[str, set[str]] = {}
    variants: dict[str, Counter[str]] = {}
    for text, chat_id, weight in zip(members, ids, weights, strict=True):
        found = readable_phrases(text)
        for phrase in found:
            variants.setdefault(phrase_key(phrase), Counter())[phrase] += 1
        for key in {phrase_key(p) for p in found}:
            share[key] = share.get(key, 0.0) + float(weight) / total
            convs.setdefault(key, set()).add(chat_id)
    return share, convs, variants


def rank_phrases(
    members: Sequence[str],
    contrast: Sequence[str],
    *,
    chat_ids: Sequence[str] | None = None,
    min_conversations: int = MIN_CONVERSATIONS,
    top: int = 6,
    smoothing: float = 0.05,
) -> list[Phrase]:
    """Phrases frequent among the (central) members and rare among the contrast set.

    Each text counts a phrase once, under its key (so "tory" and "tories" are one phrase);
    member i weighs `centrality_weights` (the first, nearest the centroid, most). With r_m
    and r_c the weighted shares of members and of contrast texts containing a phrase, it
    scores r_m * log((r_m + s) / (r_c + s)), its contribution to the KL divergence of the
    members from the contrast (a phrase as common outside as inside scores 0), times a bonus
    for longer phrases (LONGER_BONUS). A phrase found in fewer than min_conversations
    distinct conversations, or with a word that is, or with a personal name, never counts.

    Args:
        members: Texts of the cluster's members, nearest the centroid first.
        contrast: Texts of the nearest non-members (may be empty).
        chat_ids: The conversation of each member (default: each text its own).
        min_conversations: Distinct conversations a phrase and each of its words need.
        top: How many phrases to return at most.
        smoothing: s, keeps the ratio finite for phrases absent from the contrast set.

    Returns:
        Up to `top` phrases, most distinctive first, none repeating another's words.
    """
    ids = list(chat_ids) if chat_ids is not None else [str(i) for i in range(len(members))]
    texts = [scrub(t) for t in members]
    evidence = Evidence.of(texts, ids, min_conversations)
    share, convs, variants = _count(texts, ids)
    outside: Counter[str] = Counter()
    for text in contrast:
        outside.update({phrase_key(p) for p in readable_phrases(scrub(text))})
    verbs, asked = verb_like(texts)
    scores: dict[str, float] = {}
    shown: dict[str, str] = {}
    for key, r_m in share.items():
        if len(convs[key]) < min_conversations:
            continue
        written = display(variants[key], evidence)
        if written is None:
            continue
        r_c = outside[key] / len(contrast) if contrast else 0.0
        bonus = 1.0 + LONGER_BONUS * (len(content_words(key)) - 1)
        kl = r_m * float(np.log((r_m + smoothing) / (r_c + smoothing)))
        scores[key] = bonus * kl * max(0.0, 1.0 - CONTRAST_PENALTY * r_c)
        last = written.split()[-1]
        if (last in verbs and last not in asked) or (" " not in key and participle(key)):
            scores[key] *= VERB_PENALTY
        shown[key] = written
    out: list[Phrase] = []
    covered: set[str] = set()
    for key in select_phrases(scores, top):
        words = content_words(key)
        if words <= covered:
            continue  # "number and car" after "car type" and "contact number"
        covered |= words
        verb = " " not in key and shown[key] in verbs
        ask = verb and shown[key] in asked
        out.append(Phrase(key, shown[key], scores[key], len(convs[key]), verb, ask))
    return out


def shared_task(
    tasks: Sequence[str | None], chat_ids: Sequence[str], evidence: Evidence
) -> str | None:
    """The task most members give, lower-cased, if it passes the privacy checks.

    "The task is to write code" and "Write code" both read "write code". None unless at least
    _SHARED_TASK of the members and min_conversations distinct conversations give it.
    """
    norm = [_TASK_LEAD.sub("", t.strip()).rstrip(". ").casefold() if t else "" for t in tasks]
    counts = Counter(t for t in norm if t)
    if not counts:
        return None
    task, n = counts.most_common(1)[0]
    distinct = {c for t, c in zip(norm, chat_ids, strict=True) if t == task}
    if n < _SHARED_TASK * len(tasks) or len(distinct) < evidence.min_conversations:
        return None
    task_counts = Counter({lemma(w): len(distinct) for w in _WORD.findall(task)})
    checked = Evidence(task_counts, evidence.uses, evidence.min_conversations)
    return task if checked.allows(task) else None


def question_share(requests: Sequence[str]) -> float:
    """The centrality-weighted share of requests that are questions."""
    if not requests:
        return 0.0
    weights = centrality_weights(len(requests))
    asks = [
        r.rstrip().endswith("?") or (r.split()[0].casefold() in _QUESTION_WORDS if r else False)
        for r in requests
    ]
    return float(np.dot(weights, asks) / weights.sum())


def shared_opening(
    requests: Sequence[str], chat_ids: Sequence[str], evidence: Evidence
) -> str | None:
    """The longest way of starting a request ("what is your") that enough members share.

    At least _OPENING_SHARE of the requests and min_conversations distinct conversations must
    start with those words (stop words included), each of them passing the privacy checks.
    """
    starts: dict[str, set[str]] = {}
    low, high = _OPENING_WORDS
    for request, chat_id in zip(requests, chat_ids, strict=True):
        words = _WORD.findall(request.casefold().split("\n", 1)[0])
        for n in range(low, min(high, len(words)) + 1):
            starts.setdefault(" ".join(words[:n]), set()).add(chat_id)
    need = max(evidence.min_conversations, _OPENING_SHARE * len(requests))
    found = [(len(k.split()), len(c), k) for k, c in starts.items() if len(c) >= need]
    for _, _, opening in sorted(found, reverse=True):
        if evidence.allows(opening) and not BOILERPLATE & set(opening.split()):
            return opening
    return None


@dataclass(frozen=True)
class Gist:
    """What the members ask, besides the phrases: a shared task, a leading verb, questions.

    Attributes:
        task: The task most members give ("write, debug or explain code"), else None.
        verb: The word most members use as their request's verb ("write"), else None.
        questions: Whether most (central) requests are questions.
        opening: How many members start their request ("what is your"), else None.
    """

    task: str | None = None
    verb: str | None = None
    questions: bool = False
    opening: str | None = None


def private_label(
    label: ClusterLabel,
    members: Sequence[str],
    chat_ids: Sequence[str],
    fallback: ClusterLabel,
    template_words: frozenset[str],
    min_conversations: int = MIN_CONVERSATIONS,
) -> ClusterLabel:
    """The label if no member's words show through it, else less of it or `fallback`.

    The last guard before a label leaves a namer, whatever composed it: each word of the
    name and the description that is no template word must occur in min_conversations
    distinct member conversations (a plural counts as its singular), and neither may quote
    MAX_QUOTE_WORDS consecutive words of one member. A failing description is dropped.
    """
    counts = conversations_per_word(members, chat_ids, key=lambda w: lemma(w.casefold()))

    def private(text: str) -> bool:
        words = [w.casefold() for w in _WORD.findall(text)]
        rare = [
            w for w in words if w not in template_words and counts[lemma(w)] < min_conversations
        ]
        return not rare and not quotes_a_member(text, members)

    if not private(label.name):
        return fallback
    if label.description and not private(label.description):
        return ClusterLabel(name=label.name, description="", slug=label.slug)
    return label
