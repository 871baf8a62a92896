"""Checks on a cluster name an LLM returned: Clio's length limit, and nothing generic."""

from __future__ import annotations

import re

from kura_stream.stages.phrases import stop_words

MAX_CLUSTER_NAME_WORDS = 10
"""Clio's limit on a cluster name; a longer one is re-asked (clean_name cuts at twelve)."""

GENERIC_WORDS = frozenset(
    """
    miscellaneous misc general generic various varied variety diverse assorted mixed
    other others random different multiple several many common everyday unrelated
    uncategorized uncategorised unclear unknown user users request requests question
    questions query queries inquiry inquiries topic topics conversation conversations
    discussion discussions chat chats task tasks help assistance support issue issues
    thing things stuff matter matters information info interaction interactions answer
    answers answering respond responding handle handling provide providing ask asking
    asked seek seeking assist assisting get getting give giving
    """.split()  # noqa: SIM905
)
"""Words that say nothing specific about a cluster: a name made only of these (and stop
words) is generic ("Miscellaneous", "General questions", "Various topics", "User requests",
"Answer user questions")."""


def name_problem(name: str) -> str | None:
    """Why a cluster name cannot be used (too long, generic), or None when it can."""
    words = re.findall(r"[\w'-]+", name.casefold())
    if len(words) > MAX_CLUSTER_NAME_WORDS:
        return f"it has {len(words)} words, more than {MAX_CLUSTER_NAME_WORDS}"
    specific = [w for w in words if w not in GENERIC_WORDS and w not in stop_words()]
    if not specific:
        return "it is generic and would fit any group"
    return None
