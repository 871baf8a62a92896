"""OfflineSummariser: Clio's facets without an LLM, filling only what it can honestly fill."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kura_stream.privacy import scrub_conversation
from kura_stream.protocols import Embedder
from kura_stream.stages.offline_namer import analyse, select_phrases
from kura_stream.types import Conversation, Summary

logger = logging.getLogger(__name__)

VERSION = "offline:v2"
"""Bump when the cleaning, the template or the label lists change (part of every cache key)."""

TASK_LABELS = (
    "Write, debug or explain code",
    "Explain a concept or answer a factual question",
    "Write or edit an essay, article or report",
    "Write a story, poem, song or other creative text",
    "Draft an email, letter or other professional message",
    "Solve a math, physics or other calculation problem",
    "Translate text between languages",
    "Summarise or rewrite a text",
    "Brainstorm ideas or names",
    "Give advice on a personal or relationship matter",
    "Plan a trip, event or schedule",
    "Recommend products, books, films or music",
    "Analyse data or build a spreadsheet",
    "Help with homework or study for an exam",
    "Give health, fitness or medical information",
    "Give legal or financial guidance",
    "Create marketing, sales or social media content",
    "Chat casually or role-play a character",
    "Find or book a hotel, restaurant, taxi or train",
    "Prepare a job application, resume or interview",
)
"""Tasks a conversation can ask of the assistant (after Clio's top-level request clusters)."""

TOPIC_LABELS = (
    "Software development",
    "Data science and machine learning",
    "Computers, hardware and networking",
    "Mathematics",
    "Natural sciences",
    "Health and medicine",
    "Business and finance",
    "Law and government",
    "Education and learning",
    "Writing and literature",
    "Arts, music and entertainment",
    "Games and sports",
    "Travel, hotels and transport",
    "Food and cooking",
    "Relationships and personal life",
    "Careers and work",
    "History, philosophy and religion",
    "Languages and translation",
    "Shopping and products",
    "Marketing and social media",
)
"""High-level topics (after Clio's facet examples and its top-level clusters)."""

LABEL_HINTS = {
    "Write, debug or explain code": "fix this error in my code; write a function or script; "
    "why does my program not work; implement a feature with a library, framework or API",
    "Explain a concept or answer a factual question": "what is; how does it work; explain "
    "the difference between; why does; tell me about",
    "Write or edit an essay, article or report": "write an essay, blog post or article "
    "about; improve my paragraph; proofread this report",
    "Write a story, poem, song or other creative text": "write a short story, poem, song "
    "lyrics, a script or a joke about",
    "Draft an email, letter or other professional message": "write an email to my boss or "
    "a client; draft a cover letter or a formal message",
    "Solve a math, physics or other calculation problem": "solve this equation; calculate "
    "the probability, interest or derivative; physics problem",
    "Translate text between languages": "translate this sentence into French, Spanish or "
    "English; what does this word mean in another language",
    "Summarise or rewrite a text": "summarise this text; rewrite or paraphrase it; make it "
    "shorter or more formal",
    "Brainstorm ideas or names": "give me ideas for; suggest names for; brainstorm",
    "Give advice on a personal or relationship matter": "my partner, friend or family; how "
    "do I deal with; I feel; relationship advice",
    "Plan a trip, event or schedule": "plan an itinerary, a party, a wedding or my week",
    "Recommend products, books, films or music": "recommend a good book, movie, song, "
    "laptop or phone; which should I buy",
    "Analyse data or build a spreadsheet": "analyse this dataset; Excel formula; SQL query; "
    "chart; statistics",
    "Help with homework or study for an exam": "homework question; exam preparation; "
    "explain this for my class; quiz me",
    "Give health, fitness or medical information": "symptoms; medication; diet; workout "
    "plan; is it healthy",
    "Give legal or financial guidance": "taxes; contract; is it legal; investing; loans; insurance",
    "Create marketing, sales or social media content": "write an ad, product description, "
    "slogan, SEO content or social media posts for my business",
    "Chat casually or role-play a character": "hi, how are you; let's chat; pretend you "
    "are; role-play a character",
    "Find or book a hotel, restaurant, taxi or train": "book a hotel room, a table, a taxi "
    "or a train ticket; find a restaurant",
    "Prepare a job application, resume or interview": "improve my resume or CV; interview "
    "questions; job application",
    "Software development": "programming, code, bugs, functions, libraries, web and app "
    "development",
    "Data science and machine learning": "data analysis, statistics, models, neural networks, "
    "training, datasets",
    "Computers, hardware and networking": "computer, laptop, operating system, network, "
    "server, installation, settings",
    "Mathematics": "equations, algebra, geometry, calculus, probability",
    "Natural sciences": "physics, chemistry, biology, astronomy, earth science",
    "Health and medicine": "symptoms, illness, treatment, nutrition, fitness, mental health",
    "Business and finance": "company, startup, sales, money, investing, taxes, accounting",
    "Law and government": "laws, rights, contracts, politics, regulations",
    "Education and learning": "school, university, courses, teaching, studying",
    "Writing and literature": "essays, stories, poems, books, authors, grammar",
    "Arts, music and entertainment": "music, films, television, painting, celebrities",
    "Games and sports": "video games, board games, football, sports teams, players",
    "Travel, hotels and transport": "trips, hotels, flights, trains, taxis, tourist places",
    "Food and cooking": "recipes, cooking, ingredients, restaurants, meals",
    "Relationships and personal life": "partner, dating, family, friends, feelings",
    "Careers and work": "jobs, resume, interviews, colleagues, career change",
    "History, philosophy and religion": "historical events, philosophers, religions, ethics",
    "Languages and translation": "translation, grammar of a foreign language, vocabulary",
    "Shopping and products": "buying products, prices, product comparison, reviews",
    "Marketing and social media": "advertising, branding, SEO, social media posts, content",
}
"""Example phrases embedded with each built-in label: a bare label sits far from requests."""

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

# Programming languages: a fence tag names one; otherwise keywords inside code do.
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
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
_CODE_LINE = re.compile(r"^(?: {4}|\t)|[;{}]\s*$|^\s*(?:#include|import |def |class |\$ )")
_GREETING = re.compile(
    r"(?i)^(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening))"
    r"(?: there| all| everyone| chatgpt| assistant)?[!,.]*\s+)+"
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def code_regions(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Text without its code, and the code regions as (fence tag, code).

    Fenced blocks, inline `code` and lines that look like code (indented by four spaces, or
    ending in ; { }) are taken out; prose stays.
    """
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


def first_request(text: str, max_chars: int = 240) -> str:
    """The user's first message, cleaned: no code, no greeting, one line, 1-2 sentences."""
    prose, _ = code_regions(text)
    line = _GREETING.sub("", " ".join(prose.replace("[code]", " ").split())).strip()
    line = " ".join(_SENTENCES.split(line)[:2])
    if len(line) > max_chars:
        line = line[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return line or "(code only)"


def key_phrases(text: str, top: int = 5) -> list[str]:
    """The most frequent 1-3-word phrases of text (stop words removed); length breaks ties."""
    counts = Counter(analyse(text))
    scores = {p: n + 0.1 * (len(p.split()) - 1) for p, n in counts.items()}
    return select_phrases(scores, top)


class OfflineSummariser:
    """Implements Summariser without an LLM; deterministic.

    request: the user's first message, cleaned (code, greetings removed) and cut to two
    sentences; summary: a templated sentence quoting it; languages: the human language of
    the user's text (py3langid, when confident) and programming languages found in code;
    task and topic: the fixed label nearest the request by embedding similarity (each built-in
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
            labels = [*self.task_labels, *self.topic_labels]
            texts = [f"{lb}: {LABEL_HINTS[lb]}" if lb in LABEL_HINTS else lb for lb in labels]
            vectors = self._embedder.embed(texts)
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
        if len(text.strip()) < 3:
            return None
        if self._identifier is None:
            from py3langid.langid import (  # type: ignore[import-untyped, unused-ignore]
                MODEL_FILE,
                LanguageIdentifier,
            )

            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        code, prob = self._identifier.classify(text[:2000])
        if prob < self.min_language_confidence:
            return None
        name: str | None = _LANGUAGE_NAMES.get(str(code))
        return name

    def _nearest(self, vector: npt.NDArray[np.float32], labels: Sequence[str], which: int) -> str:
        sims = self._labels()[which] @ vector
        return labels[int(np.argmax(sims))]

    async def summarise(self, conversation: Conversation) -> Summary:
        """Summarise one conversation (never fails on content; empty text gets placeholders)."""
        return (await self.summarise_batch([conversation]))[0]

    async def summarise_batch(self, conversations: Sequence[Conversation]) -> list[Summary]:
        """Summarise many conversations with one embedder call for all their requests.

        The embedder runs in a worker thread (onnxruntime releases the GIL), so the event
        loop goes on assigning and publishing while this batch is embedded.
        """
        parts = [self._parts(c) for c in conversations]
        vectors = await asyncio.to_thread(
            self._embedder.embed, [request for _, request, _, _ in parts]
        )
        out = []
        for (clean, request, languages, phrases), vector in zip(parts, vectors, strict=True):
            out.append(
                Summary(
                    chat_id=clean.chat_id,
                    summary=request,
                    request=request,
                    task=self._nearest(vector, self.task_labels, 0),
                    topic=self._nearest(vector, self.topic_labels, 1),
                    languages=languages,
                    facets={"key_phrases": phrases},
                    metadata=dict(clean.metadata),
                    summariser=self.name,
                )
            )
        return out

    def _parts(
        self, conversation: Conversation
    ) -> tuple[Conversation, str, tuple[str, ...], list[str]]:
        clean = scrub_conversation(conversation)
        users = [m.content for m in clean.messages if m.role == "user"]
        first = users[0] if users else clean.messages[0].content
        request = first_request(first)
        _, blocks = code_regions("\n".join(m.content for m in clean.messages))
        user_prose, _ = code_regions("\n".join(users))
        human = self.human_language(" ".join(user_prose.split()))
        languages = ([human] if human else []) + programming_languages(blocks)
        return clean, request, tuple(dict.fromkeys(languages)), list(key_phrases(user_prose))


def hash_labels(labels: Sequence[str]) -> str:
    """A short stable digest of a label list."""
    return hashlib.sha256("\n".join(labels).encode()).hexdigest()[:8]
