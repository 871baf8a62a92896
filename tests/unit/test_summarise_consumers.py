"""How many summarise consumers serve runs: one per partition with an LLM summariser."""

from __future__ import annotations

from collections.abc import Sequence

from consumers.summarise_embed import consumers_for
from kura_stream.service.ingest import Ingestor
from kura_stream.settings import KafkaSettings, ServiceSettings, Settings
from kura_stream.types import Conversation, Summary
from tests.fakes.hash_embedder import HashEmbedder


async def one(c: Conversation) -> Summary:
    return Summary(chat_id=c.chat_id, summary="s")


async def many(cs: Sequence[Conversation]) -> list[Summary]:
    return [Summary(chat_id=c.chat_id, summary="s") for c in cs]


def ingestor(*, offline: bool) -> Ingestor:
    return Ingestor(
        summarise=one,
        summarise_batch=many if offline else None,
        embedder=HashEmbedder(dim=8),
        max_bytes=4096,
        concurrency=2,
    )


def test_an_llm_summariser_gets_a_consumer_per_partition() -> None:
    settings = Settings(kafka=KafkaSettings(partitions=6))
    assert consumers_for(settings, ingestor(offline=False)) == 6


def test_offline_keeps_the_default() -> None:
    settings = Settings(kafka=KafkaSettings(partitions=6))
    assert consumers_for(settings, ingestor(offline=True)) == 2


def test_a_configured_count_is_kept() -> None:
    settings = Settings(
        kafka=KafkaSettings(partitions=6), service=ServiceSettings(summarise_consumers=3)
    )
    assert consumers_for(settings, ingestor(offline=False)) == 3
