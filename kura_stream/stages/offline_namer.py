"""OfflineClusterNamer: names a cluster by what its central members ask, without an LLM."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from kura_stream.protocols import Embedder
from kura_stream.stages.name_phrases import (
    QUESTION_SHARE,
    Gist,
    Phrase,
    evidence_checks,
    private_label,
    question_share,
    rank_phrases,
    shared_opening,
    shared_task,
)
from kura_stream.stages.name_privacy import MIN_CONVERSATIONS, quotes_a_member
from kura_stream.stages.phrases import (
    join_name,
    listing,
    sentence_case,
    slug_from,
)
from kura_stream.types import ClusterLabel, Summary

logger = logging.getLogger(__name__)

VERSION = "readable-v4"
"""Part of the namer's identity: bump when the phrase scoring or the label format changes."""

MAX_NAME_WORDS = 8
FALLBACK_NAME = "Miscellaneous requests"
FALLBACK_DESCRIPTION = "Conversations with no phrase shared by enough of them to name them."

MAX_PHRASES = 2
"""How many distinct phrases a name may list (within MAX_NAME_WORDS)."""
MAX_CANDIDATE_PHRASES = 4
"""Candidates for an embedder to choose from list one to this many phrases."""
EMBED_SAMPLE = 20
"""Members and contrast texts embedded per cluster to choose a candidate: bounds the cost."""
CONTRAST_WEIGHT = 0.5
"""How much a candidate's likeness to the contrast set counts against it."""
_SECOND_RATIO = 0.35
"""A second phrase joins the name ("<head> and <second>") when it scores this share of the
head: one that few members use would misdescribe the cluster."""
_VERB_RATIO = 1.0
"""A verb leads the name ("Write Python and JavaScript") when it scores this share of the
best topic phrase."""
_WORD = re.compile(r"(?u)[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")


TEMPLATE_WORDS = frozenset(
    w.casefold()
    for w in _WORD.findall(
        f"{FALLBACK_NAME} {FALLBACK_DESCRIPTION} Members ask to about mostly questions what you"
        " They also mention and or Members mostly start their requests with messages"
    )
)
"""The words of the label templates (describe, compose_name): they come from no member."""
FALLBACK = ClusterLabel(
    name=FALLBACK_NAME, description=FALLBACK_DESCRIPTION, slug="miscellaneous_requests"
)


def summary_text(summary: Summary) -> str:
    """The text a namer may use: the summariser's own fields, never ids, metadata or facets."""
    parts: list[str] = []
    for part in (summary.summary, summary.request, summary.task, summary.topic):
        if part and all(part not in seen for seen in parts):
            parts.append(part)
    return "\n".join(parts)


def phrase_text(summary: Summary) -> str:
    """The text phrases are taken from: digest (or summary), request and topic.

    The digest of what the user wrote, where there is one, carries a long pasted text's
    subject, which the one-line request does not. The task is used whole.
    """
    parts: list[str] = []
    for part in (summary.digest or summary.summary, summary.request, summary.topic):
        if part and all(part not in seen for seen in parts):
            parts.append(part)
    return "\n".join(parts)


def distinctive_phrases(
    members: Sequence[str],
    contrast: Sequence[str],
    *,
    top: int = 6,
    min_conversations: int = MIN_CONVERSATIONS,
) -> list[str]:
    """The shown text of `rank_phrases`' phrases, each member text its own conversation."""
    ranked = rank_phrases(members, contrast, min_conversations=min_conversations, top=top)
    return [p.text for p in ranked]


def describe(topics: Sequence[str], gist: Gist) -> str:
    """One or two sentences on what the members ask, from checked phrases only.

    "Members ask to <task>, mostly about a, b and c.", "Members ask to <verb> a, b and c.",
    "Members ask questions about a, b and c." or "Members ask about a, b and c."; phrases
    past the third go into a second sentence.
    """
    main, more = list(topics[:3]), list(topics[3:5])
    if gist.task:
        text = f"Members ask to {gist.task}, mostly about {listing(main)}."
    elif gist.verb and not main:
        return f"Members ask {_verb_lead(gist)}."
    elif gist.verb:
        text = f"Members ask to {gist.verb} {listing(main)}."
    elif gist.questions:
        text = f"Members ask questions about {listing(main)}."
    else:
        text = f"Members ask about {listing(main)}."
    if more:
        text += f" They also mention {listing(more)}."
    return text


def _verb_lead(gist: Gist) -> str:
    return f"questions about what you {gist.verb}" if gist.questions else f"to {gist.verb}"


def compose_name(
    topics: Sequence[str], gist: Gist, max_words: int = MAX_NAME_WORDS, max_phrases: int = 0
) -> str:
    """The name from topic phrases (checked, best first) and the gist of the requests.

    "<Task>: <head> and <second>" when the task fits max_words, "<Verb> <head> and <second>"
    when a verb leads, "Questions about <head> and <second>" for questions, else "<Head> and
    <second>"; with a verb and no topic, "Questions about what you <verb>". At most
    max_phrases phrases (0: MAX_PHRASES).
    """
    max_phrases = max_phrases or MAX_PHRASES
    if not topics:
        return sentence_case(_verb_lead(gist)) if gist.verb else FALLBACK_NAME
    head_words = len(topics[0].split())
    if gist.task and len(f"{gist.task}:".split()) + head_words <= max_words:
        return join_name(
            topics,
            prefix=f"{sentence_case(gist.task)}: ",
            max_words=max_words,
            max_phrases=max_phrases,
        )
    if gist.verb:
        return join_name(
            topics, prefix=f"{gist.verb} ", max_words=max_words, max_phrases=max_phrases
        )
    if gist.questions and head_words + 2 <= max_words:
        return join_name(
            topics, prefix="Questions about ", max_words=max_words, max_phrases=max_phrases
        )
    return join_name(topics, max_words=max_words, max_phrases=max_phrases)


def compose(
    phrases: Sequence[Phrase], gist: Gist, member_texts: Sequence[str], max_phrases: int = 0
) -> ClusterLabel:
    """The label from ranked phrases and the gist of the requests.

    A verb leads when it scores _VERB_RATIO of the best topic phrase. The name's second phrase must
    score _SECOND_RATIO of the head. A description that would repeat MAX_QUOTE_WORDS
    consecutive words of a member drops its task, then phrases, until it quotes nobody.
    """
    topics = [p for p in phrases if not p.asked]
    verbs = [p for p in phrases if p.asked]
    if not topics and not verbs and gist.opening:
        kind = "questions" if gist.questions else "messages"
        name = f'"{sentence_case(gist.opening)} …" {kind}'
        text = f'Members mostly start their requests with "{gist.opening}".'
        return ClusterLabel(name=name, description=text, slug=slug_from([gist.opening]))
    if not topics and not verbs:
        return ClusterLabel(
            name=FALLBACK_NAME, description=FALLBACK_DESCRIPTION, slug="miscellaneous_requests"
        )
    if verbs and (not topics or verbs[0].score >= _VERB_RATIO * topics[0].score):
        gist = Gist(gist.task, verbs[0].text, gist.questions, gist.opening)
    best = (topics or verbs)[0].score
    core = [p.text for p in topics if p.score >= _SECOND_RATIO * best]
    name = compose_name(core, gist, max_phrases=max_phrases)
    slug = slug_from([gist.verb or "", *core[:2]])
    listed = [p.text for p in topics]
    for n in range(len(listed), -1, -1):
        for task in (gist.task, None) if gist.task else (None,):
            text = describe(listed[:n], Gist(task, gist.verb, gist.questions, gist.opening))
            if (n or gist.verb) and not quotes_a_member(text, member_texts):
                return ClusterLabel(name=name, description=text, slug=slug)
    return ClusterLabel(name=name, description="", slug=slug)


def label_texts(
    members: Sequence[str],
    contrast: Sequence[str],
    *,
    chat_ids: Sequence[str] | None = None,
    requests: Sequence[str] | None = None,
    tasks: Sequence[str | None] | None = None,
    top_phrases: int = 6,
    min_conversations: int = MIN_CONVERSATIONS,
) -> ClusterLabel:
    """The offline label of a group of texts against a contrast set (see OfflineClusterNamer).

    Args:
        members: Texts of the group, nearest its centroid first.
        contrast: Texts of nearby non-members.
        chat_ids: The conversation of each member (default: each text its own).
        requests: What each member asks (default: its text), to tell question clusters.
        tasks: Each member's task field, when the summariser filled it.
        top_phrases: How many phrases to find.
        min_conversations: Distinct conversations each word of the label needs.

    Returns:
        The label.
    """
    ids = list(chat_ids) if chat_ids is not None else [str(i) for i in range(len(members))]
    phrases, gist = evidence_of(
        members, contrast, ids, requests, tasks, top_phrases, min_conversations
    )
    read = [f"{m}\n{t or ''}" for m, t in zip(members, tasks or [None] * len(members), strict=True)]
    label = compose(phrases, gist, members)
    return private_label(label, read, ids, FALLBACK, TEMPLATE_WORDS, min_conversations)


def evidence_of(
    members: Sequence[str],
    contrast: Sequence[str],
    ids: Sequence[str],
    requests: Sequence[str] | None,
    tasks: Sequence[str | None] | None,
    top_phrases: int,
    min_conversations: int,
) -> tuple[list[Phrase], Gist]:
    """The checked phrases and the gist a label is composed from (see `label_texts`).

    When no phrase sets the members apart from their neighbours, the phrases most common
    among the members are taken instead (the contrast set ignored): on diverse traffic most
    clusters were otherwise named "Miscellaneous requests".
    """
    phrases = rank_phrases(
        members, contrast, chat_ids=ids, min_conversations=min_conversations, top=top_phrases
    )
    if not phrases and contrast:
        phrases = rank_phrases(
            members, [], chat_ids=ids, min_conversations=min_conversations, top=top_phrases
        )
    evidence = evidence_checks(members, ids, min_conversations)
    asks = list(requests) if requests is not None else list(members)
    gist = Gist(
        task=shared_task(tasks, ids, evidence) if tasks else None,
        questions=question_share(asks) >= QUESTION_SHARE,
        opening=shared_opening(asks, ids, evidence),
    )
    return phrases, gist


def candidates(
    phrases: Sequence[Phrase], gist: Gist, member_texts: Sequence[str]
) -> list[ClusterLabel]:
    """Labels an embedder may choose from, the default (`compose`'s) first, names distinct.

    They list one to MAX_CANDIDATE_PHRASES phrases, with and without "Questions about", or
    name the shared opening; all are built from the same checked phrases and gist.
    """
    out = [compose(phrases, gist, member_texts)]
    for n in range(1, MAX_CANDIDATE_PHRASES + 1):
        for questions in {gist.questions, False}:
            out.append(compose(phrases, replace(gist, questions=questions), member_texts, n))
    topics = [p for p in phrases if not p.asked][:MAX_CANDIDATE_PHRASES]
    for i, j in itertools.combinations(range(len(topics)), 2):
        out.append(compose([topics[i], topics[j]], gist, member_texts, 2))
    for one in topics[1:]:
        out.append(compose([one], gist, member_texts, 1))
    if gist.opening:
        out.append(compose([], gist, member_texts))
    return list({c.name: c for c in reversed(out)}.values())[::-1]


def choose(
    labels: Sequence[ClusterLabel],
    members: Sequence[str],
    contrast: Sequence[str],
    embedder: Embedder,
) -> ClusterLabel:
    """The label whose name is nearest the members' centroid and farthest from the contrast.

    Each name scores cos(name, members) - CONTRAST_WEIGHT * cos(name, contrast), the
    centroids of at most EMBED_SAMPLE texts each (the nearest first).
    """
    if len(labels) < 2 or not members:
        return labels[0]
    m, c = members[:EMBED_SAMPLE], contrast[:EMBED_SAMPLE]
    vectors = embedder.embed([*[x.name for x in labels], *m, *c])
    names, inside, outside = np.split(vectors, [len(labels), len(labels) + len(m)])
    score = names @ inside.mean(axis=0)
    if len(c):
        score -= CONTRAST_WEIGHT * (names @ outside.mean(axis=0))
    return labels[int(np.argmax(score))]


class OfflineClusterNamer:
    """Implements ClusterNamer with readable key phrases instead of an LLM.

    The name is a short phrase of what the members ask ("Questions about train ID and
    price", "Write, debug or explain code: sorting algorithms", "Python pandas dataframe
    errors"): the phrases that most set the members, the central ones weighing most, apart
    from the contrast set, merged with their singular/plural variants, at most eight words,
    never keywords joined by a slash. The description says what members ask in aggregate and
    never quotes one of them. Privacy: no word seen in fewer than `min_conversations`
    distinct conversations, and no personal name (`name_privacy`), reaches either; with no
    phrase left the name is "Miscellaneous requests". It reads only the summaries' text
    fields, never chat ids (except to count conversations), metadata or facets.
    """

    def __init__(
        self,
        *,
        top_phrases: int = 6,
        min_conversations: int = MIN_CONVERSATIONS,
        embedder: Embedder | None = None,
    ) -> None:
        """Create the namer.

        Args:
            top_phrases: How many phrases to find per cluster (the description lists five).
            min_conversations: Distinct conversations each word of a label needs.
            embedder: Chooses among candidate names the one nearest the members (see
                `choose`); None keeps the default composition.
        """
        self._top = top_phrases
        self._min = min_conversations
        self._embedder = embedder

    @property
    def name(self) -> str:
        """Identity of the namer, with its version (and a non-default privacy threshold)."""
        suffix = "" if self._min == MIN_CONVERSATIONS else f"+k{self._min}"
        if self._embedder is not None:
            suffix += f"+emb:{self._embedder.name}"
        return f"offline:{VERSION}{suffix}"

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        """Name `members` by the phrases that set them apart from `contrast`.

        Args:
            members: Summaries of the cluster (a bounded sample, nearest the centroid first).
            contrast: Summaries of its nearest non-members (a bounded sample).

        Returns:
            The label; "Miscellaneous requests" when no phrase passes the checks.
        """
        texts = [phrase_text(s) for s in members]
        ids = [s.chat_id for s in members]
        phrases, gist = evidence_of(
            texts,
            [phrase_text(s) for s in contrast],
            ids,
            [s.request or s.summary for s in members],
            [s.task for s in members],
            self._top,
            self._min,
        )
        if self._embedder is None:
            label = compose(phrases, gist, texts)
        else:
            label = choose(
                candidates(phrases, gist, texts),
                [s.embedding_text() for s in members],
                [s.embedding_text() for s in contrast],
                self._embedder,
            )
        read = [f"{phrase_text(s)}\n{summary_text(s)}" for s in members]
        return private_label(label, read, ids, FALLBACK, TEMPLATE_WORDS, self._min)
