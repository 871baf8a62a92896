"""The worst texts found so far go through parse, scrub, summary and embedding in bounded time.

A run of 120k backticks once took 62 s in one pattern and froze the service; every step of
the hot path must stay roughly linear in its input, and the summary reads a bounded prefix.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from kura_stream.adapters.embedders.static import StaticEmbedder
from kura_stream.service.ingest import RawRecord, ingest
from kura_stream.stages.offline_summary import OfflineSummariser
from kura_stream.types import Conversation, Message

_SIZE = 300_000
WORST = {
    "backtick run": "`" * _SIZE,
    "fences without ends": "```py\n" * (_SIZE // 6),
    "one long word": "a" * _SIZE,
    "digits and spaces": "1 " * (_SIZE // 2),
    "digit groups": "020 7019 " * (_SIZE // 9),
    "at signs": "a@" * (_SIZE // 2),
    "dots": "." * _SIZE,
    "url without end": "http://" + "a/" * (_SIZE // 2),
    "brackets": "(" * _SIZE,
    "capitalised words": "Anna Maria " * (_SIZE // 11),
    "street-like": "12 High Street " * (_SIZE // 15),
    "iban-like": "GB82 WEST " * (_SIZE // 10),
    "key=value": "password=" * (_SIZE // 9),
    "mixed": "`x` 1-2 a@b.c (3) " * (_SIZE // 18),
}
BOUND_S = 10.0
"""Per message of 300 KB on a slow 2-core machine; a linear step takes well under a second."""


def _record(text: str) -> RawRecord:
    now = datetime.now(UTC)
    conversation = Conversation(
        chat_id="worst",
        created_at=now,
        messages=(Message(created_at=now, role="user", content=text),),
    )
    return RawRecord(conversation.model_dump_json().encode(), source="t/0/0")


@pytest.mark.parametrize("kind", sorted(WORST))
async def test_a_worst_input_is_summarised_in_bounded_time(
    kind: str, static: StaticEmbedder
) -> None:
    summariser = OfflineSummariser(embedder=static)
    started = time.perf_counter()
    result = await ingest(
        [_record(WORST[kind])],
        summarise=summariser.summarise,
        summarise_batch=summariser.summarise_batch,
        embedder=static,
        max_bytes=1_000_000,
        concurrency=1,
    )
    took = time.perf_counter() - started
    assert len(result.embedded) == 1, result.dead
    assert took < BOUND_S, f"{kind}: {took:.1f}s"
