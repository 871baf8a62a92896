"""summarise -> name -> hierarchy on 20 real ShareGPT conversations, against the local LLM.

Asserts that every output validates and every failure carries its reason, not the wording.
"""

from __future__ import annotations

from pathlib import Path

import instructor
import pytest

from kura_stream import api
from kura_stream.adapters.embedders import make_embedder
from kura_stream.adapters.llm.calls import RetryPolicy
from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm.namers import LLMClusterNamer, LLMParentNamer
from kura_stream.adapters.llm.summariser import LLMSummariser
from kura_stream.cache import Cache
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.settings import EmbedderSettings, LLMSettings, Settings
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.types import Conversation

pytestmark = pytest.mark.llm

RETRY = RetryPolicy(validation_retries=2, attempts=2, base_delay_s=0.5)


def _real_sample(n: int) -> list[Conversation]:
    """The n shortest of the first 300 ShareGPT conversations (bounded CI time), in order."""
    pool = load_sharegpt_conversations(300)
    shortest = sorted(pool, key=lambda c: len(c.transcript()))[:n]
    keep = {c.chat_id for c in shortest}
    return [c for c in pool if c.chat_id in keep]


async def test_summarise_name_hierarchy_on_real_conversations(
    llm_settings: LLMSettings, static_models: None, tmp_path: Path
) -> None:
    conversations = _real_sample(20)
    embedder = make_embedder(Settings(embedder=EmbedderSettings(kind="minilm")))
    fast = make_instructor_client(llm_settings, mode=instructor.Mode.MD_JSON)
    tools = make_instructor_client(llm_settings)
    summariser = LLMSummariser(
        fast, model=llm_settings.model, max_conversation_tokens=600, retry=RETRY
    )
    failures: list[tuple[str, str]] = []
    with Cache(tmp_path / "cache.sqlite") as cache:
        summaries = await api.summarise_conversations(
            conversations, model=summariser, cache=cache, concurrency=1,
            on_failure=failures.extend,
        )  # fmt: skip
        assert len(summaries) + len(failures) == 20
        assert len(summaries) >= 16, failures
        assert all(reason for _, reason in failures)
        assert all(s.summary.strip() for s in summaries)
        base = await api.generate_base_clusters_from_conversation_summaries(
            summaries,
            embedder=embedder,
            namer=LLMClusterNamer(tools, model=llm_settings.model, retry=RETRY),
            fallback_namer=OfflineClusterNamer(),
            cache=cache,
            k=3,
        )
        assert len(base) == 3
        assert sum(c.count for c in base) == len(summaries)
        assert all(c.name.strip() for c in base)
        clusters = await api.reduce_clusters_from_base_clusters(
            base,
            embedder=embedder,
            parent_namer=LLMParentNamer(tools, model=llm_settings.model, retry=RETRY),
            summaries=summaries,
            cache=cache,
            max_top=2,
        )
    ids = {c.id for c in clusters}
    top = [c for c in clusters if c.parent_id is None]
    assert 1 <= len(top) <= 2
    assert all(c.parent_id in ids for c in clusters if c.parent_id is not None)
    assert sum(c.count for c in top) == len(summaries)
    assert all(c.name.strip() for c in clusters)
