"""Kura's model strings resolved to kura-stream's parts: LLM ones where an endpoint is set.

A Kura model class names an LLM ("openai/gpt-4o-mini"). Here that string is used as is when
an OpenAI-compatible endpoint is configured (KURA_LLM_BASE_URL, or OPENAI_BASE_URL as the
OpenAI SDK reads it); without one the offline summariser and namers run, so Kura's Quick
Start works with no key and no network. The model "offline" always runs offline.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import SecretStr

from kura_stream.protocols import ClusterNamer, Embedder, ParentNamer, Summariser
from kura_stream.settings import LLMSettings, Settings
from kura_stream.types import HierarchyGrouping

if TYPE_CHECKING:
    import instructor
    from rich.console import Console

    from kura_stream.adapters.llm.calls import RetryPolicy

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/gpt-4o-mini"
"""Kura's default model string for every LLM stage."""
OFFLINE_MODEL = "offline"
"""The model string that always selects the offline summariser and namers."""

_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def resolve_llm(model: str, settings: Settings | None = None) -> LLMSettings | None:
    """The LLM settings for a Kura model string, or None to run offline.

    "openai/<name>" sends <name>; any other string is sent as is. The endpoint is
    settings.llm.base_url when it was set (KURA_LLM_BASE_URL or explicitly), else
    OPENAI_BASE_URL with OPENAI_API_KEY; with neither, None (offline).
    """
    if model == OFFLINE_MODEL:
        return None
    settings = settings or Settings()
    llm = settings.llm
    name = model.removeprefix("openai/")
    if "base_url" in llm.model_fields_set:
        return llm.model_copy(update={"model": name})
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        key = os.environ.get("OPENAI_API_KEY") or llm.api_key.get_secret_value()
        return llm.model_copy(
            update={"base_url": base_url, "model": name, "api_key": SecretStr(key)}
        )
    logger.info("no OpenAI-compatible endpoint set (KURA_LLM_BASE_URL): %s runs offline", model)
    return None


def shared_embedder(settings: Settings | None = None) -> Embedder:
    """One embedder per embedder configuration in this process, shared by every Kura model.

    Kura's classes each take an embedding model; the stages must agree on one (summaries,
    clusters and the map live in the same space), and loading MiniLM once is enough. It is
    wrapped in a MemoEmbedder: the offline summary's text is embedded once, not per stage.
    """
    from kura_stream.adapters.embedders.memo import MemoEmbedder
    from kura_stream.bootstrap import build_embedder

    settings = settings or Settings()
    key = settings.embedder.model_dump_json()
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = MemoEmbedder(build_embedder(settings))
        return _embedders[key]


def _client(llm: LLMSettings) -> instructor.AsyncInstructor:
    from kura_stream.adapters.llm.client import make_instructor_client

    return make_instructor_client(llm, mode=llm.mode)


def _retry(llm: LLMSettings) -> RetryPolicy:
    from kura_stream.adapters.llm.calls import RetryPolicy

    return RetryPolicy(validation_retries=llm.max_retries, attempts=llm.max_retries + 1)


def build_summariser(
    llm: LLMSettings | None, *, embedder: Embedder, temperature: float
) -> Summariser:
    """The LLM summariser for `llm`, or the offline one (which needs the embedder)."""
    if llm is None:
        from kura_stream.stages.offline_summary import OfflineSummariser

        return OfflineSummariser(embedder=embedder)
    from kura_stream.adapters.llm.summariser import LLMSummariser

    return LLMSummariser(_client(llm), model=llm.model, temperature=temperature, retry=_retry(llm))


def build_cluster_namer(
    llm: LLMSettings | None, *, temperature: float, max_contrast: int
) -> ClusterNamer:
    """The LLM cluster namer (bounded prompt, offline fallback), or the offline namer."""
    from kura_stream.stages.offline_namer import OfflineClusterNamer

    if llm is None:
        return OfflineClusterNamer()
    from kura_stream.adapters.llm.namers import LLMClusterNamer

    return LLMClusterNamer(
        _client(llm),
        model=llm.model,
        max_contrast=max_contrast,
        temperature=temperature,
        retry=_retry(llm),
    )


def build_parent_namer(llm: LLMSettings | None) -> tuple[ParentNamer, HierarchyGrouping]:
    """The parent namer, and how parents form.

    With an LLM, Clio's choice by name; offline, k-means on centroids named offline (word
    overlap cannot judge meaning).
    """
    if llm is None:
        from kura_stream.stages.offline_parent_namer import OfflineParentNamer

        return OfflineParentNamer(), "centroids"
    from kura_stream.adapters.llm.namers import LLMParentNamer

    return LLMParentNamer(_client(llm), model=llm.model), "names"


def concurrency(max_concurrent_requests: int, llm: LLMSettings | None) -> int:
    """Kura's max_concurrent_requests, capped by the endpoint's configured concurrency.

    KURA_LLM_CONCURRENCY sets the cap: the local server has one slot, and requests queued
    behind it count against their timeout.
    """
    if llm is None:
        return max(1, max_concurrent_requests)
    return max(1, min(max_concurrent_requests, llm.concurrency))


@contextmanager
def console_progress(
    console: Console | None, description: str
) -> Iterator[Callable[[int, int], None] | None]:
    """A progress(done, total) callback drawing a bar on `console`; None without a console."""
    if console is None:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
