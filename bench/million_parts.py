"""The synthetic traffic and the memory probes of bench_million (and bench_recompute)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kura_stream.adapters.embedders.common import ModelFilesMissingError, static_dir
from kura_stream.adapters.embedders.factory import make_embedder
from kura_stream.settings import Settings
from kura_stream.stages.cluster import normalise
from kura_stream.types import EmbeddedConversation, Summary

TOPICS = 400
VARIANTS = 8
ASKS = ["how do i", "explain", "help me with", "write about", "questions on", "fix my", "plan for"]


class Traffic:
    """Near-duplicate conversations: TOPICS x VARIANTS texts, embedded once each.

    A topic is three words drawn from the static embedder's vocabulary; its variants vary the
    request and one detail word (within a topic the static vectors agree about 0.7, across
    topics about 0.2). Each conversation is a variant's vector plus a little noise.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        settings = Settings()
        static = settings.embedder.model_copy(update={"kind": "static"})
        settings = settings.model_copy(update={"embedder": static})
        words = _vocabulary(settings)
        topics = [self.rng.choice(words, 3, replace=False) for _ in range(TOPICS)]
        self.texts = [
            f"{ASKS[v % len(ASKS)]} {' '.join(topics[t])} {self.rng.choice(words)}"
            for t in range(TOPICS)
            for v in range(VARIANTS)
        ]
        self.vectors = _embed_texts(settings, self.texts)
        self.made = 0

    def batch(self, n: int, prefix: str = "c") -> list[EmbeddedConversation]:
        """The next n conversations (chat ids `<prefix><number>`)."""
        picks = self.rng.integers(len(self.texts), size=n)
        noise = 0.02 * self.rng.standard_normal((n, self.vectors.shape[1]), dtype=np.float32)
        vectors = normalise(self.vectors[picks] + noise)
        now = datetime.now(UTC)
        out = []
        for pick, vector in zip(picks.tolist(), vectors, strict=True):
            text = f"The user asks: {self.texts[pick]}"
            out.append(conversation(f"{prefix}{self.made}", text, vector, now))
            self.made += 1
        return out


def conversation(
    chat_id: str, text: str, vector: npt.NDArray[np.float32], now: datetime
) -> EmbeddedConversation:
    """An embedded conversation as the assign consumer receives it."""
    return EmbeddedConversation(
        chat_id=chat_id,
        summary=Summary(chat_id=chat_id, summary=text),
        vector=tuple(vector.tolist()),
        embedder="bench",
        created_at=now,
        received_at=now,
    )


def _vocabulary(settings: Settings) -> list[str]:
    """Plain words of the static model's vocabulary (made-up ones if its files are missing)."""
    path = static_dir(settings.embedder.models_dir) / "tokenizer.json"
    if not path.exists():
        return [f"w{i:05d}" for i in range(20_000)]
    vocab = json.loads(path.read_text())["model"]["vocab"]
    return [w for w in vocab if re.fullmatch(r"[a-z]{5,10}", w)]


def _embed_texts(settings: Settings, texts: list[str]) -> npt.NDArray[np.float32]:
    """The static embedder's vectors (random directions if its files are missing)."""
    try:
        return normalise(make_embedder(settings).embed(texts))
    except ModelFilesMissingError as err:  # the bench still runs where set-up fetched nothing
        print(f"static embedder unavailable ({err}); random vectors", file=sys.stderr)
        rng = np.random.default_rng(1)
        return normalise(rng.standard_normal((len(texts), 256)).astype(np.float32))


def peak_mb() -> float:
    """This process's peak RSS (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """Samples this process's RSS a few times a second: when the peak came, not only how high."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                    self.samples.append((rss, time.perf_counter() - self._started))

    def stop(self) -> tuple[float, float]:
        """(highest RSS sampled in MB, seconds after the start it was seen)."""
        self._stop.set()
        self._thread.join()
        return max(self.samples, default=(0.0, 0.0))


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
