"""Poison records: every parse failure is a dead letter, a record that keeps failing dies alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from kura_stream.errors import EndpointUnavailableError
from kura_stream.service.ingest import (
    BadRecord,
    Ingestor,
    RawRecord,
    ingest,
    parse_conversation,
)
from kura_stream.types import Conversation, Summary
from tests.fakes.hash_embedder import HashEmbedder
from tests.unit.test_ingest import _conv

LIMIT = 1_000_000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"chat_id": ' + b"9" * 5000 + b"}", "not readable JSON"),
        (b'{"chat_id": "a\xff\xfe"}', "not JSON"),
        (b'{"chat_id": 3, "messages": "no"}', "invalid conversation"),
        (b"[1, 2]", "expected a JSON object"),
        (
            b'{"chat_id": "a", "messages": [], "metadata": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
            "nested too deeply",
        ),
    ],
)
def test_every_unreadable_message_is_a_bad_record_with_a_reason(value: bytes, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(BadRecord, match=reason):
        parse_conversation(value, max_bytes=LIMIT)
    assert time.perf_counter() - started < 2.0


async def _crash_on_poison(c: Conversation) -> Summary:
    if "poison" in c.messages[0].content:
        raise RecursionError("the summariser choked")
    return Summary(chat_id=c.chat_id, summary=c.messages[0].content)


async def test_a_record_that_keeps_failing_is_dead_lettered_alone() -> None:
    records = [
        RawRecord(_conv(f"c{i}", "poison" if i == 2 else "fine"), source=f"t/0/{i}")
        for i in range(5)
    ]
    ingestor = Ingestor(
        summarise=_crash_on_poison, embedder=HashEmbedder(dim=16), max_bytes=LIMIT, concurrency=2
    )
    with pytest.raises(RecursionError):
        await ingestor(records)
    result = await ingestor.each(
        records,
        reason_for=lambda err: f"gave up: {err!r}",
        is_transient=lambda err: isinstance(err, EndpointUnavailableError),
    )
    assert [e.chat_id for e in result.embedded] == ["c0", "c1", "c3", "c4"]
    assert [(d.source, d.reason) for d in result.dead] == [
        ("t/0/2", "gave up: RecursionError('the summariser choked')")
    ]


async def test_an_endpoint_that_is_down_is_never_a_dead_letter() -> None:
    async def down(c: Conversation) -> Summary:
        raise EndpointUnavailableError("connection error: refused")

    ingestor = Ingestor(
        summarise=down, embedder=HashEmbedder(dim=16), max_bytes=LIMIT, concurrency=1
    )
    with pytest.raises(EndpointUnavailableError):
        await ingestor.each(
            [RawRecord(_conv("a"))],
            reason_for=str,
            is_transient=lambda err: isinstance(err, EndpointUnavailableError),
        )


def test_the_content_hash_tells_versions_apart() -> None:
    from kura_stream.service.ingest import content_hash

    now = datetime.now(UTC)
    a = Conversation.model_validate_json(_conv("a", "one"))
    b = Conversation.model_validate_json(_conv("a", "two"))
    assert content_hash(a) != content_hash(b)
    assert content_hash(a) == content_hash(a.model_copy(update={"created_at": now}))


async def test_only_allowed_metadata_keys_reach_the_summariser() -> None:
    now = datetime.now(UTC)
    conversation = Conversation.model_validate_json(_conv("m", "hello there")).model_copy(
        update={
            "metadata": {"customer_name": "Bartholomew Smith", "plan": "pro"},
            "created_at": now,
        }
    )
    seen: list[dict[str, object]] = []

    async def summarise(c: Conversation) -> Summary:
        seen.append(dict(c.metadata))
        return Summary(chat_id=c.chat_id, summary="hello")

    await ingest(
        [RawRecord(conversation.model_dump_json().encode())],
        summarise=summarise,
        embedder=HashEmbedder(dim=16),
        max_bytes=LIMIT,
        concurrency=1,
        metadata_keys=("plan",),
    )
    assert seen == [{"plan": "pro"}]
