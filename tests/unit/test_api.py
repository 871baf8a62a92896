"""Kura's procedural API: the four stages chain, and checkpoints follow their input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kura_stream import api
from kura_stream.checkpoints import CheckpointStore
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.stages.offline_summary import OfflineSummariser
from kura_stream.types import Cluster, Conversation, Message
from tests.fakes.hash_embedder import HashEmbedder

REQUESTS = [
    "How do I fix this python ImportError in my django app?",
    "Write a short birthday poem for my sister",
    "Translate this business email into Spanish please",
    "Plan a three day hiking trip in the Alps",
]


def _conversations(n: int, offset: int = 0) -> list[Conversation]:
    now = datetime.now(UTC)
    return [
        Conversation(
            chat_id=f"c{i}",
            created_at=now,
            messages=(
                Message(created_at=now, role="user", content=f"{REQUESTS[i % 4]} (variant {i})"),
                Message(created_at=now, role="assistant", content="Sure, here you go."),
            ),
        )
        for i in range(offset, offset + n)
    ]


async def _pipeline(
    conversations: list[Conversation], checkpoints: CheckpointStore
) -> list[Cluster]:
    embedder = HashEmbedder(dim=64)
    summaries = await api.summarise_conversations(
        conversations, model=OfflineSummariser(embedder=embedder), checkpoint_manager=checkpoints
    )
    base = await api.generate_base_clusters_from_conversation_summaries(
        summaries,
        embedder=embedder,
        namer=OfflineClusterNamer(),
        checkpoint_manager=checkpoints,
        k=4,
    )
    meta = await api.reduce_clusters_from_base_clusters(
        base,
        embedder=embedder,
        parent_namer=OfflineParentNamer(),
        summaries=summaries,
        checkpoint_manager=checkpoints,
        max_top=2,
    )
    return await api.reduce_dimensionality_from_clusters(
        meta, embedder=embedder, summaries=summaries, base_clusters=base,
        checkpoint_manager=checkpoints,
    )  # fmt: skip


async def test_stages_chain_and_checkpoints_follow_input(tmp_path: Path) -> None:
    checkpoints = CheckpointStore(tmp_path / "ck")
    first = await _pipeline(_conversations(40), checkpoints)
    base = [c for c in first if c.level == 0]
    assert sum(c.count for c in base) == 40
    assert len([c for c in first if c.parent_id is None]) <= 2
    again = await _pipeline(_conversations(40), checkpoints)
    assert [c.model_dump() for c in again] == [c.model_dump() for c in first]
    grown = await _pipeline(_conversations(48), checkpoints)  # new input: never a stale answer
    assert sum(c.count for c in grown if c.level == 0) == 48
    tree = api.visualise_clusters(grown)
    assert "48" in tree


async def test_auto_k_finds_the_four_requests() -> None:
    embedder = HashEmbedder(dim=64)
    summaries = await api.summarise_conversations(
        _conversations(200), model=OfflineSummariser(embedder=embedder)
    )
    base = await api.generate_base_clusters_from_conversation_summaries(
        summaries, embedder=embedder, namer=OfflineClusterNamer(), k="auto"
    )
    # Four kinds of request, 200 conversations: k is chosen between 10 (the floor) and 200/20.
    assert len(base) == 10
    kinds = {frozenset(int(c[1:]) % 4 for c in b.chat_ids) for b in base}
    assert all(len(k) == 1 for k in kinds), "a base cluster mixes two kinds of request"
