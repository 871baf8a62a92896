"""What the user wrote, without an LLM: prose apart from code, the request, and a digest.

The digest is what an offline summary embeds: every user turn's prose, bounded in words, so a
conversation's vector carries its content and not only its opening line ("Can you summarise
this news story for me?" says nothing about the story). The readable request is what a person
sees: the request with its subject, the framing around a pasted text dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

DIGEST_MAX_WORDS = 200
"""Words of user prose in a digest: MiniLM reads at most 256 word pieces (about 1.3 per English
word), so more words would only cost tokenising; fewer would drop what the model can read."""

LONG_MESSAGE_WORDS = 60
"""A first message longer than this, opening with a short sentence, is read as an instruction
followed by a pasted text (an article, an essay, a log)."""

_INSTRUCTION_MAX_WORDS = 25
_TITLE_MAX_WORDS = 14

# Possessive quantifiers, and an info string that stops at a backtick: backtracking there made
# a run of backticks, or a long unbroken line after a fence, quadratic (120k: a minute).
_FENCE = re.compile(r"```[ \t]*+([\w+#.-]*+)[^\n`]*+\n(.*?)(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_CODE_LINE = re.compile(r"^(?: {4}|\t)|[;{}]\s*$|^\s*(?:#include|import |def |class |\$ )")
_GREETING = re.compile(
    r"(?i)^(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening))"
    r"(?: there| all| everyone| chatgpt| assistant)?[!,.]*\s+)+"
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[.!?:])\s+")
_POLITE_OPENING = re.compile(
    r"(?i)^(?:(?:can|could|would|will) you(?: please)?|please|kindly|"
    r"i (?:want|need|would like) you to|i'd like you to|help me(?: to)?)\s+"
)
_POLITE_CLOSING = re.compile(r"(?i)(?:\s+(?:for me|please|for us))*\s*[?.!:]*\s*$")
_POINTING = re.compile(
    r"(?i)\b(?:this|these|the following|following|the below|below|the attached|the)\s+"
)


_MEMO_MAX_CHARS = 4096
"""Texts up to this long have their code regions and clean prose remembered (_MEMO_SIZE of
them): one summary asks for them of the same turn five or six times (the request, the digest,
the asking turn, the instruction and its body), a third of the offline summary's text work."""
_MEMO_SIZE = 256


def code_regions(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Text without its code, and the code regions as (fence tag, code).

    Fenced blocks, inline `code` and lines that look like code (indented by four spaces, or
    ending in ; { }) are taken out; prose stays.
    """
    if len(text) > _MEMO_MAX_CHARS:
        return _code_regions(text)
    prose, blocks = _code_regions_memo(text)
    return prose, list(blocks)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _code_regions_memo(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    prose, blocks = _code_regions(text)
    return prose, tuple(blocks)


def _code_regions(text: str) -> tuple[str, list[tuple[str, str]]]:
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    prose = _FENCE.sub(" [code] ", text)
    blocks += [("", m.group(1)) for m in _INLINE_CODE.finditer(prose)]
    prose = _INLINE_CODE.sub(lambda m: m.group(1) if " " not in m.group(1) else "[code]", prose)
    lines = prose.split("\n")
    code_lines = [ln for ln in lines if _CODE_LINE.search(ln)]
    if code_lines:
        blocks.append(("", "\n".join(code_lines)))
    prose = "\n".join(ln for ln in lines if not _CODE_LINE.search(ln))
    return prose, blocks


def clean_prose(text: str) -> str:
    """One line of the text's prose: no code, no opening greeting, whitespace collapsed."""
    if len(text) > _MEMO_MAX_CHARS:
        return _clean_prose(text)
    return _clean_prose_memo(text)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _clean_prose_memo(text: str) -> str:
    return _clean_prose(text)


def _clean_prose(text: str) -> str:
    prose, _ = code_regions(text)
    return _GREETING.sub("", " ".join(prose.replace("[code]", " ").split())).strip()


def _cut(line: str, max_chars: int) -> str:
    if len(line) <= max_chars:
        return line
    return line[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def first_request(text: str, max_chars: int = 240) -> str:
    """The user's first message, cleaned: no code, no greeting, one line, 1-2 sentences."""
    line = " ".join(_SENTENCES.split(clean_prose(text))[:2])
    return _cut(line, max_chars) or "(code only)"


def digest(user_turns: Sequence[str], max_words: int = DIGEST_MAX_WORDS) -> str:
    """The prose of the user's turns, in order, cut to max_words words.

    Code is dropped (its languages are a facet of their own); when the user wrote nothing but
    code, the code itself is kept, so the digest is never empty for a non-empty conversation.
    """
    words: list[str] = []
    for turn in user_turns:
        words.extend(clean_prose(turn).split())
        if len(words) >= max_words:
            break
    if not words:
        words = " ".join(user_turns).split()
    return " ".join(words[:max_words])


def _title(body: str, phrases: Sequence[str]) -> str:
    first_line = body.strip().split("\n", 1)[0].strip()
    words = first_line.split()
    if 2 <= len(words) <= _TITLE_MAX_WORDS and not first_line.endswith((".", ":", "?")):
        return first_line
    if not phrases:
        return ""
    return ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]


def instruction_and_body(text: str) -> tuple[str, str] | None:
    """Split a first message into a short opening instruction and the text it points at.

    Returns:
        (instruction, body), or None when the message is short or does not open with a short
        sentence (then it is a request in its own right).
    """
    prose, _ = code_regions(text)
    prose = _GREETING.sub("", prose.strip())
    if len(prose.split()) <= LONG_MESSAGE_WORDS:
        return None
    head, _, rest = prose.partition("\n")
    if len(head.split()) > _INSTRUCTION_MAX_WORDS:
        sentences = _CLAUSE_END.split(" ".join(prose.split()), maxsplit=1)
        if len(sentences) < 2 or len(sentences[0].split()) > _INSTRUCTION_MAX_WORDS:
            return None
        head, rest = sentences
    if not rest.strip():
        return None
    return " ".join(head.split()), rest


def imperative(instruction: str) -> str:
    """'Can you summarise this news story for me?' -> 'Summarise a news story'."""
    line = _POLITE_CLOSING.sub("", _POLITE_OPENING.sub("", instruction.strip()))
    line = _POINTING.sub("a ", line, count=1) if _POINTING.search(line) else line
    return line[:1].upper() + line[1:]


def readable_request(first_message: str, phrases: Sequence[str], max_chars: int = 240) -> str:
    """What the user asks, with its subject: the line a person reads for one conversation.

    A short message is its own request (first two sentences, cleaned). A long one that opens
    with a short instruction is that instruction, put plainly, about the pasted text's title
    (its first line when that reads as one) or else its key phrases: "Can you summarise this
    news story for me? Brazil stocks rally ..." -> "Summarise a news story about Brazil
    stocks rally".

    Args:
        first_message: The user's first message.
        phrases: Key phrases of the user's text, best first (the subject when no title).
        max_chars: Longest result.
    """
    split = instruction_and_body(first_message)
    if split is None:
        return first_request(first_message, max_chars)
    instruction, body = split
    subject = _title(body, phrases[:3])
    head = imperative(instruction)
    if not subject or not head:
        return first_request(first_message, max_chars)
    return _cut(f"{head} about {subject}", max_chars)
