"""OfflineSummariser: Clio's facets without an LLM, filling only what it can honestly fill."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from kura_stream.privacy import scrub_conversation
from kura_stream.protocols import Embedder
from kura_stream.stages.language_id import classify_batch
from kura_stream.stages.offline_digest import clean_prose, code_regions, digest, readable_request
from kura_stream.stages.offline_labels import (
    LABEL_TEMPERATURE,
    MIN_LABEL_PROBABILITY,
    TASK_LABELS,
    TOPIC_LABELS,
    label_texts,
)
from kura_stream.stages.phrases import analyse, select_phrases
from kura_stream.types import Conversation, Summary

logger = logging.getLogger(__name__)

VERSION = "offline:v3"
"""Bump when the cleaning, the template or the label lists change (part of every cache key)."""

_LANGUAGE_NAMES = dict(
    pair.split(":")
    for pair in """
    af:afrikaans am:amharic an:aragonese ar:arabic arz:arabic ary:arabic as:assamese
    az:azerbaijani ba:bashkir be:belarusian bg:bulgarian bn:bengali br:breton bs:bosnian
    ca:catalan cs:czech cy:welsh da:danish de:german el:greek en:english eo:esperanto
    es:spanish et:estonian eu:basque fa:persian fi:finnish fo:faroese fr:french fy:frisian
    ga:irish gd:gaelic gl:galician gu:gujarati ha:hausa he:hebrew hi:hindi hr:croatian
    ht:haitian hu:hungarian hy:armenian id:indonesian ig:igbo is:icelandic it:italian
    ja:japanese jv:javanese ka:georgian kk:kazakh km:khmer kn:kannada ko:korean ku:kurdish
    ky:kyrgyz la:latin lb:luxembourgish lg:ganda ln:lingala lo:lao lt:lithuanian lv:latvian
    mg:malagasy mk:macedonian ml:malayalam mn:mongolian mr:marathi ms:malay mt:maltese
    my:burmese ne:nepali nl:dutch nn:norwegian no:norwegian oc:occitan om:oromo or:oriya
    pa:punjabi pl:polish ps:pashto pt:portuguese qu:quechua ro:romanian ru:russian
    rw:kinyarwanda sa:sanskrit se:sami si:sinhala sk:slovak sl:slovenian so:somali
    sq:albanian sr:serbian sv:swedish sw:swahili ta:tamil te:telugu tg:tajik th:thai
    tk:turkmen tl:tagalog tr:turkish tt:tatar ug:uyghur uk:ukrainian ur:urdu uz:uzbek
    uzs:uzbek vi:vietnamese xh:xhosa yo:yoruba yue:chinese wuu:chinese zh:chinese zu:zulu
    """.split()  # noqa: SIM905
)

_FENCE_ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "jsx": "javascript",
    "ts": "typescript", "tsx": "typescript", "sh": "bash", "shell": "bash", "zsh": "bash",
    "console": "bash", "c++": "c++", "cpp": "c++", "cc": "c++", "cs": "c#", "csharp": "c#",
    "rs": "rust", "golang": "go", "rb": "ruby", "kt": "kotlin", "ps1": "powershell",
    "yml": "yaml", "md": "markdown", "htm": "html", "postgresql": "sql", "mysql": "sql",
}  # fmt: skip
_NOT_LANGUAGES = frozenset({"", "text", "plaintext", "txt", "output", "log", "diff", "csv"})
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.MULTILINE))
    for name, pattern in (
        ("python", r"^\s*(?:def \w+\(.*\):|from [\w.]+ import |import \w+$|print\(|elif )"),
        ("javascript", r"console\.log\(|\bfunction\s*\w*\(|=>\s*\{|\b(?:const|let) \w+ = "),
        ("typescript", r"\binterface \w+ \{|: (?:string|number|boolean)\b[;,)=]"),
        ("java", r"\bpublic (?:static )?(?:void|class)\b|System\.out\.print"),
        ("c++", r"#include\s*<(?:iostream|vector|string)>|std::"),
        ("c", r"#include\s*<(?:stdio|stdlib|string)\.h>|\bprintf\("),
        ("c#", r"\bnamespace \w+|Console\.Write(?:Line)?\(|\busing System"),
        ("rust", r"\bfn main\(\)|\blet mut \b|println!\("),
        ("go", r"^package main$|\bfunc \w+\(|fmt\.Print"),
        ("sql", r"(?i)\bselect\s+[\w*,.()\s]{1,200}?\s+from\s+\w|\binsert into\b|\bcreate table\b"),
        ("html", r"<(?:html|div|body|head|span|p|a href)[\s>]"),
        ("css", r"^\s*[.#]?[\w-]+\s*\{\s*$|^\s*(?:color|margin|padding|display):"),
        ("bash", r"^\s*(?:\$ |sudo |apt(?:-get)? |pip install |npm install |#!/bin/(?:ba)?sh)"),
        ("php", r"<\?php|\$\w+\s*=.*;\s*$"),
        ("ruby", r"^\s*(?:def \w+$|end$|puts )"),
    )
)


def programming_languages(blocks: Sequence[tuple[str, str]]) -> list[str]:
    """Programming languages in code regions: fence tags first, then keyword evidence."""
    found: dict[str, None] = {}
    for tag, code in blocks:
        lang = _FENCE_ALIASES.get(tag, tag)
        if tag in _NOT_LANGUAGES and tag:
            continue  # tagged as output or plain text: not code
        if tag and re.fullmatch(r"[a-z][\w+#-]{0,19}", lang):
            found[lang] = None
            continue
        for name, pattern in _KEYWORDS:
            if pattern.search(code):
                found[name] = None
    return list(found)


def key_phrases(text: str, top: int = 5) -> list[str]:
    """The most frequent 1-3-word phrases of text (stop words removed); length breaks ties."""
    counts = Counter(analyse(text))
    scores = {p: n + 0.1 * (len(p.split()) - 1) for p, n in counts.items()}
    return select_phrases(scores, top)


class OfflineSummariser:
    """Implements Summariser without an LLM; deterministic.

    request and summary: what the user asks with its subject (readable_request: a short first
    message cleaned and cut to two sentences; a short instruction before a pasted text, put
    plainly, "about" that text's title or key phrases); digest: the prose of every user turn,
    bounded (what is embedded); languages: the human language of the user's text (py3langid,
    when confident) and programming languages found in code; task and topic: the fixed label
    nearest the digest's vector when it clearly beats the others, else empty (each built-in
    label is embedded with example phrases, LABEL_HINTS);
    facets["key_phrases"]: frequent phrases of the user's messages. concerning_score,
    user_frustration and assistant_errors are not assessed and stay empty. Personal data is
    scrubbed from the conversation first.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        task_labels: Sequence[str] = TASK_LABELS,
        topic_labels: Sequence[str] = TOPIC_LABELS,
        min_language_confidence: float = 0.3,
    ) -> None:
        """Create the summariser.

        Args:
            embedder: Embeds the request and the labels to pick task and topic.
            task_labels: Candidate tasks.
            topic_labels: Candidate topics.
            min_language_confidence: py3langid probability needed to report a language.
        """
        if not task_labels or not topic_labels:
            raise ValueError("task and topic labels must not be empty")
        self._embedder = embedder
        self.task_labels = tuple(task_labels)
        self.topic_labels = tuple(topic_labels)
        self.min_language_confidence = min_language_confidence
        self._label_vectors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self._identifier: Any = None
        custom = (self.task_labels, self.topic_labels) != (TASK_LABELS, TOPIC_LABELS)
        suffix = f"+labels{hash_labels(self.task_labels + self.topic_labels)}" if custom else ""
        self._name = f"{VERSION}+{embedder.name}{suffix}"

    @property
    def name(self) -> str:
        """offline:v1+<embedder name>: the labels depend on the embedder, so it is part of it."""
        return self._name

    def _labels(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        if self._label_vectors is None:
            vectors = self._embedder.embed(label_texts([*self.task_labels, *self.topic_labels]))
            n = len(self.task_labels)
            self._label_vectors = (vectors[:n], vectors[n:])
        return self._label_vectors

    def warm_up(self) -> None:
        """Load what the first batch would otherwise: labels, language model, stop words.

        A service calls this before it consumes, so the first conversations do not wait
        (about 1.5 s with MiniLM, and 0.8 s to import scikit-learn for the stop words).
        """
        self._labels()
        self.human_language("warm up the language identifier")
        key_phrases("warm up the phrase analyser")

    def human_language(self, text: str) -> str | None:
        """The language of text when py3langid is confident enough, as a lowercase name."""
        return self.human_languages([text])[0]

    def human_languages(self, texts: Sequence[str]) -> list[str | None]:
        """human_language of each text, the batch scored at once (stages/language_id.py)."""
        if self._identifier is None:
            from py3langid.langid import (  # type: ignore[import-untyped, unused-ignore]
                MODEL_FILE,
                LanguageIdentifier,
            )

            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        names: list[str | None] = [None] * len(texts)
        asked = [i for i, text in enumerate(texts) if len(text.strip()) >= 3]
        found = classify_batch(self._identifier, [texts[i][:2000] for i in asked])
        for i, (code, prob) in zip(asked, found, strict=True):
            if prob >= self.min_language_confidence:
                names[i] = _LANGUAGE_NAMES.get(str(code))
        return names

    async def summarise(self, conversation: Conversation) -> Summary:
        """Summarise one conversation (never fails on content; empty text gets placeholders)."""
        return (await self.summarise_batch([conversation]))[0]

    async def summarise_batch(self, conversations: Sequence[Conversation]) -> list[Summary]:
        """Summarise many conversations with one embedder call for all their digests.

        The digest's vector picks task and topic, and it is the vector the pipeline embeds
        next (a MemoEmbedder answers that second call), so each conversation is embedded once.
        The embedder runs in a worker thread (onnxruntime releases the GIL), so the event
        loop goes on assigning and publishing while this batch is embedded; so does the text
        work before it (scrubbing, code regions, phrases: milliseconds a conversation).
        """
        parts = await asyncio.to_thread(self._batch_parts, conversations)
        vectors = await asyncio.to_thread(self._embedder.embed, [p.digest for p, _ in parts])
        tasks = self._batch_labels(vectors, self.task_labels, 0)
        topics = self._batch_labels(vectors, self.topic_labels, 1)
        return [
            Summary(
                chat_id=part.clean.chat_id,
                summary=part.request,
                request=part.request,
                task=task,
                topic=topic,
                languages=tuple(dict.fromkeys([*([human] if human else []), *part.code_languages])),
                facets={"key_phrases": part.phrases},
                metadata=dict(part.clean.metadata),
                summariser=self.name,
                digest=part.digest,
            )
            for (part, human), task, topic in zip(parts, tasks, topics, strict=True)
        ]

    def _batch_parts(
        self, conversations: Sequence[Conversation]
    ) -> list[tuple[_Parts, str | None]]:
        """Each conversation's parts and human language (one language-model pass for all)."""
        parts = [self._parts(c) for c in conversations]
        humans = self.human_languages([p.prose for p in parts])
        return list(zip(parts, humans, strict=True))

    def _batch_labels(
        self, vectors: npt.NDArray[np.float32], labels: Sequence[str], which: int
    ) -> list[str | None]:
        """confident_label for every vector of a batch, in one product with the labels."""
        if len(vectors) == 0:
            return []
        sims = (np.asarray(vectors, dtype=np.float32) @ self._labels()[which].T).astype(np.float64)
        best = sims.argmax(axis=1)
        weights = np.exp((sims - sims.max(axis=1, keepdims=True)) / LABEL_TEMPERATURE)
        confident = 1.0 / weights.sum(axis=1) >= MIN_LABEL_PROBABILITY
        pairs = zip(best.tolist(), confident.tolist(), strict=True)
        return [labels[b] if ok else None for b, ok in pairs]

    def _parts(self, conversation: Conversation) -> _Parts:
        clean = scrub_conversation(conversation)
        seen = _seen_text(clean)
        users = [text for role, text in seen if role == "user"] or [seen[0][1]]
        _, blocks = code_regions("\n".join(text for _, text in seen))
        user_prose, _ = code_regions("\n".join(users))
        phrases = key_phrases(user_prose)
        # "Hi!" opens many chats: the request is the first turn that asks something.
        asking = next((u for u in users if len(clean_prose(u).split()) >= _ASKING_WORDS), users[0])
        return _Parts(
            clean=clean,
            request=readable_request(asking, phrases),
            digest=digest(users),
            prose=" ".join(user_prose.split()),
            code_languages=programming_languages(blocks),
            phrases=phrases,
        )


_ASKING_WORDS = 4
"""Words a user turn needs to stand as the request (a bare greeting does not)."""
SEEN_CHARS = 50_000
"""The most text of one conversation the summary reads, from its start: the request, the
digest (200 words) and the phrases come from the beginning, and every step stays bounded on
a 1 MB message."""


def _seen_text(conversation: Conversation) -> list[tuple[str, str]]:
    """(role, text) of the turns within the first SEEN_CHARS characters (the last one cut)."""
    seen: list[tuple[str, str]] = []
    left = SEEN_CHARS
    for message in conversation.messages:
        if left <= 0:
            break
        seen.append((message.role, message.content[:left]))
        left -= len(message.content) + 1
    return seen


class _Parts(NamedTuple):
    """What a summary is made of, before its vector picks task and topic."""

    clean: Conversation
    request: str
    digest: str
    prose: str
    """The user's prose on one line, whose human language the batch identifies at once."""
    code_languages: list[str]
    phrases: list[str]


def hash_labels(labels: Sequence[str]) -> str:
    """A short stable digest of a label list."""
    return hashlib.sha256("\n".join(labels).encode()).hexdigest()[:8]
