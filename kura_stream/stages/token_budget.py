"""Token budgets without a tokenizer: estimates, cuts at a budget, items that fit."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_PIECE = re.compile(r"[A-Za-z0-9]+|\S")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free, deliberately high estimate of the tokens in text.

    Runs of ASCII letters and digits count one token per four characters (at least one);
    every other non-space character counts one token (punctuation in code, and CJK or other
    non-Latin characters, which BPE tokenizers split finely). English prose comes out about
    20-40% above a real BPE count, so a budget on this estimate is a safe bound.

    Args:
        text: Any text.

    Returns:
        The estimated token count.
    """
    total = 0
    for m in _PIECE.finditer(text):
        n = m.end() - m.start()
        total += math.ceil(n / 4) if n > 1 or m.group().isascii() else 1
    return total


def _piece_cost(piece: str) -> int:
    return math.ceil(len(piece) / 4) if len(piece) > 1 or piece.isascii() else 1


def cut_start(text: str, budget: int) -> str:
    """The longest prefix of text whose estimate fits budget (cut between pieces)."""
    used, end = 0, 0
    for m in _PIECE.finditer(text):
        used += _piece_cost(m.group())
        if used > budget:
            return text[:end]
        end = m.end()
    return text


def cut_end(text: str, budget: int) -> str:
    """The longest suffix of text whose estimate fits budget (cut between pieces)."""
    pieces = list(_PIECE.finditer(text))
    used, start = 0, len(text)
    for m in reversed(pieces):
        used += _piece_cost(m.group())
        if used > budget:
            return text[start:]
        start = m.start()
    return text


def shorten(text: str, max_tokens: int) -> str:
    """Text on one line, cut to max_tokens (estimated, the ellipsis included) when longer."""
    line = " ".join(text.split())
    if estimate_tokens(line) <= max_tokens:
        return line
    return cut_start(line, max(1, max_tokens - 3)).rstrip(" ,;:") + "..."


def fit_items(items: Sequence[str], budget: int) -> list[str]:
    """Items in order, as many as fit within a budget of estimated tokens.

    Each item costs its estimate plus one for its separator; exact duplicates are shown once.
    """
    out: list[str] = []
    seen: set[str] = set()
    used = 0
    for item in items:
        if item in seen:
            continue
        cost = estimate_tokens(item) + 1
        if used + cost > budget:
            break
        out.append(item)
        seen.add(item)
        used += cost
    return out
