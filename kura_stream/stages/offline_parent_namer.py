"""OfflineParentNamer: Clio's meta-clustering naming steps from shared key phrases, no LLM."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kura_stream.stages.offline_namer import FALLBACK_NAME, MAX_NAME_WORDS, VERSION
from kura_stream.stages.phrases import (
    join_name,
    listing,
    readable_matrix,
    select_phrases,
    sentence_case,
    slug_from,
    tokens,
)
from kura_stream.types import ClusterLabel

logger = logging.getLogger(__name__)


def child_text(child: ClusterLabel) -> str:
    """The text of a child cluster that the offline parent namer reads: name and description.

    A child with the fallback name has nothing to lend a parent ("Miscellaneous requests"
    under every top cluster of diverse traffic said nothing): its text is empty.
    """
    if child.name == FALLBACK_NAME:
        return ""
    return f"{child.name}. {child.description}"


_WORD = re.compile(r"(?u)[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")
_TEMPLATE_WORDS = frozenset(
    w.casefold()
    for w in _WORD.findall(f"{FALLBACK_NAME} Clusters about Assorted clusters such as and")
)


def from_children(text: str, children: Sequence[ClusterLabel]) -> bool:
    """Whether every word of text is a template word or one of the children's own words.

    The children's labels passed the cluster namer's guard (no word of fewer than
    MIN_CONVERSATIONS conversations, no quoted member): a parent that only reuses their
    words reveals nothing they did not.
    """
    allowed = {w.casefold() for c in children for w in _WORD.findall(child_text(c))}
    return all(w.casefold() in allowed | _TEMPLATE_WORDS for w in _WORD.findall(text))


def _char_grams(text: str, n: int = 3) -> set[str]:
    low = f" {' '.join(text.casefold().split())} "
    return {low[i : i + n] for i in range(max(1, len(low) - n + 1))}


@dataclass(frozen=True)
class SharedPhrases:
    """The readable phrases of a set of children.

    Attributes:
        matrix: (children, phrases) 0/1: which child's name or description contains which.
        keys: The phrases' keys (lower case, singular), sorted.
        shown: Each key's most frequent written form.
        weight: Per phrase, the children containing it plus those whose name does.
    """

    matrix: npt.NDArray[np.float64]
    keys: list[str]
    shown: dict[str, str]
    weight: npt.NDArray[np.float64]


def shared_phrases(children: Sequence[ClusterLabel]) -> SharedPhrases:
    """Which readable phrases each child contains, and each phrase's weight across them.

    A phrase weighs the number of children containing it, plus the number whose *name*
    contains it (names are the densest summary of a child). Phrases are `readable_phrases`
    merged by key, so "python error" and "Python errors" count as one.
    """
    matrix, keys, shown = readable_matrix([child_text(c) for c in children], joins=False)
    if not keys:
        return SharedPhrases(matrix, keys, shown, np.zeros(0))
    in_names, name_keys, _ = readable_matrix([c.name for c in children], joins=False)
    index = {k: i for i, k in enumerate(keys)}
    name_hits = np.zeros(len(keys))
    for j, key in enumerate(name_keys):
        if key in index:
            name_hits[index[key]] = in_names[:, j].sum()
    return SharedPhrases(matrix, keys, shown, matrix.sum(axis=0) + name_hits)


class OfflineParentNamer:
    """Implements ParentNamer from key phrases shared by the children, without an LLM.

    - propose_parents: a greedy cover: repeatedly the phrase found in the most children not
      yet covered (ties: higher weight, longer phrase, alphabetical), sentence-cased; phrases
      found in more than 1.5x a candidate's share of the children are left out.
    - choose_parent: the candidate sharing the largest share of its words with the child's
      name and description; with no shared word, the most similar by character trigrams.
      It always answers with one of the candidates, verbatim.
    - label_parent: the children's most widely shared phrases as a name ("Python errors and
      pandas dataframes", never keywords joined by a slash), with a description that lists
      them and a few children's names. Children's labels already passed the cluster namer's
      privacy checks, so their phrases need none here.
    """

    @property
    def name(self) -> str:
        """Identity of the namer, with its version."""
        return f"offline-parent:{VERSION}"

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        """Up to `desired` candidate parent names covering the children.

        Args:
            children: The neighbourhood's clusters (and a few nearby ones).
            desired: About how many candidates to propose.

        Returns:
            At least one candidate name.
        """
        shared = shared_phrases(children)
        matrix, vocab, weight = shared.matrix, shared.keys, shared.weight
        if not vocab:
            return [FALLBACK_NAME]
        wanted = max(1, desired)
        if wanted > 1:
            # A phrase in far more than its share of the children cannot tell groups apart
            # ("Questions" in every name); leave it out unless nothing else is left.
            common = matrix.sum(axis=0) > max(2, math.ceil(1.5 * len(children) / wanted))
            if not common.all():
                matrix = matrix * ~common
        covered = np.zeros(matrix.shape[0], dtype=bool)
        picked: list[str] = []
        lengths = np.array([len(p.split()) for p in vocab])
        while len(picked) < wanted and not covered.all():
            gain = matrix[~covered].sum(axis=0)
            best = int(np.lexsort((np.arange(len(vocab)), -lengths, -weight, -gain))[0])
            if gain[best] <= 0:
                break
            if from_children(shared.shown[vocab[best]], children):
                picked.append(sentence_case(shared.shown[vocab[best]]))
            covered |= matrix[:, best] > 0
            matrix[:, best] = 0  # never pick it again
        return picked or [FALLBACK_NAME]

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        """The candidate whose words best match the child's name and description.

        Args:
            child: The cluster to place.
            candidates: The parent names offered.

        Returns:
            One of candidates, exactly as given.
        """
        if not candidates:
            raise ValueError("no candidates to choose from")
        words = tokens(child_text(child))
        grams = _char_grams(child_text(child))

        def rank(candidate: str) -> tuple[float, float, str]:
            cand = tokens(candidate)
            overlap = len(cand & words) / len(cand) if cand else 0.0
            cg = _char_grams(candidate)
            return (-overlap, -len(cg & grams) / len(cg | grams), candidate)

        return min(candidates, key=rank)

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        """A name and description for a parent from the phrases its children share most.

        Args:
            children: The clusters it received (a bounded sample).

        Returns:
            The parent's label.
        """
        shared = shared_phrases(children)
        keys = select_phrases(dict(zip(shared.keys, shared.weight.tolist(), strict=True)), 4)
        phrases = [shared.shown[k] for k in keys]
        examples = "; ".join([c.name for c in children if c.name != FALLBACK_NAME][:3])
        about = f"Clusters about {listing(phrases)}" if phrases else "Assorted clusters"
        label = ClusterLabel(
            name=join_name(phrases, max_words=MAX_NAME_WORDS) or FALLBACK_NAME,
            description=f"{about}, such as: {examples}." if examples else f"{about}.",
            slug=slug_from(phrases),
        )
        if from_children(label.name, children) and from_children(label.description, children):
            return label
        logger.debug("a parent label used words of no child; the fallback name is used")
        return ClusterLabel(
            name=FALLBACK_NAME, description="Assorted clusters.", slug="miscellaneous_requests"
        )
