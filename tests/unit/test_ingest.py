"""Ingest: raw records become embedded conversations or dead letters with reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kura_stream.service.ingest import RawRecord, ingest
from kura_stream.stages.summarise import SummaryError
from kura_stream.types import Conversation, Message, Summary
from tests.fakes.hash_embedder import HashEmbedder


def _conv(chat_id: str, text: str = "How do I sort a list in Python?") -> bytes:
    now = datetime.now(UTC)
    return (
        Conversation(
            chat_id=chat_id,
            created_at=now,
            messages=(Message(created_at=now, role="user", content=text),),
        )
        .model_dump_json()
        .encode()
    )


async def _summarise(c: Conversation) -> Summary:
    if "fail" in c.messages[0].content:
        raise SummaryError("model answered nonsense three times")
    return Summary(chat_id=c.chat_id, summary=c.messages[0].content)


async def test_good_and_bad_records_side_by_side() -> None:
    records = [
        RawRecord(_conv("a"), b"a", 1_700_000_000_000, "conv/0/1"),
        RawRecord(b"{oops", b"x", None, "conv/0/2"),
        RawRecord(json.dumps({"chat_id": "y"}).encode(), b"y", None, "conv/0/3"),
        RawRecord(None, None, None, "conv/0/4"),
        RawRecord(b'{"pad": "' + b"x" * 5000 + b'"}', b"big", None, "conv/0/5"),
        RawRecord(_conv("b", "please fail"), b"b", None, "conv/1/1"),
        RawRecord(_conv("c", "my email is a.b@example.com"), b"c", None, "conv/1/2"),
    ]
    result = await ingest(
        records,
        summarise=_summarise,
        embedder=HashEmbedder(dim=32),
        max_bytes=4096,
        concurrency=2,
        permanent_errors=(SummaryError,),
    )
    assert [e.chat_id for e in result.embedded] == ["a", "c"]
    assert "example.com" not in result.embedded[1].summary.summary  # scrubbed before summary
    assert result.embedded[0].received_at == datetime.fromtimestamp(1_700_000_000, UTC)
    reasons = {d.source: (d.stage, d.reason) for d in result.dead}
    assert reasons["conv/0/2"][1].startswith("not JSON")
    assert reasons["conv/0/3"][1].startswith("invalid conversation")
    assert reasons["conv/0/4"][1] == "empty message"
    assert reasons["conv/0/5"][1].startswith("oversized")
    assert reasons["conv/1/1"] == (
        "summarise",
        "summary failed: model answered nonsense three times",
    )
    big = next(d for d in result.dead if d.source == "conv/0/5")
    assert big.size == len(records[4].value or b"")


async def test_transient_failures_propagate_for_redelivery() -> None:
    async def down(_: Conversation) -> Summary:
        raise ConnectionError("endpoint down")

    with pytest.raises(ConnectionError):
        await ingest(
            [RawRecord(_conv("a"))],
            summarise=down,
            embedder=HashEmbedder(dim=32),
            max_bytes=4096,
            concurrency=1,
            permanent_errors=(SummaryError,),
        )


async def test_a_chat_id_twice_in_a_batch_goes_on_twice_with_its_content_hash() -> None:
    result = await ingest(
        [RawRecord(_conv("a", "first")), RawRecord(_conv("a", "second"))],
        summarise=_summarise,
        embedder=HashEmbedder(dim=32),
        max_bytes=4096,
        concurrency=1,
    )
    # The assigner, which knows what is stored, judges the second: duplicate or conflict.
    assert [e.summary.summary for e in result.embedded] == ["first", "second"]
    hashes = [e.content_hash for e in result.embedded]
    assert all(hashes)
    assert hashes[0] != hashes[1]


async def test_one_ingestor_bounds_summaries_in_flight_across_batches() -> None:
    import asyncio

    from kura_stream.service.ingest import Ingestor

    in_flight, peak = 0, 0

    async def slow(c: Conversation) -> Summary:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return Summary(chat_id=c.chat_id, summary="s")

    ingestor = Ingestor(
        summarise=slow, embedder=HashEmbedder(dim=16), max_bytes=4096, concurrency=3
    )
    batches = [[RawRecord(_conv(f"{b}-{i}")) for i in range(10)] for b in range(2)]
    results = await asyncio.gather(*(ingestor(batch) for batch in batches))
    assert [len(r.embedded) for r in results] == [10, 10]
    assert peak == 3  # two consumers' batches together, never more than the one bound
