"""The on-disk cache, and the summarise stage reading it: new input is never answered stale."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import JsonValue

import kura_stream.cache as cache_module
from kura_stream.adapters.llm.summariser import LLMSummariser
from kura_stream.cache import Cache, make_key
from kura_stream.stages.prompts import SummaryPrompt
from kura_stream.stages.summarise import summarise
from tests.fakes.openai_server import FakeOpenAIServer, running
from tests.unit.test_summarise import FAST, client_for, conv, echo


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    with Cache(tmp_path / "cache" / "kura.sqlite") as c:
        yield c


def test_json_and_bytes_round_trip_and_persist(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Cache(path) as c:
        c.set_json("k1", {"a": [1, 2.5, "x", None, True]}, namespace="ns")
        c.set_bytes("k2", b"\x00\x01", namespace="vec")
        assert c.get_json("k1") == {"a": [1, 2.5, "x", None, True]}
        assert c.get_bytes("k2") == b"\x00\x01"
        assert c.get_json("k2") is None
        assert c.get_bytes("k1") is None
        assert c.get_json("missing") is None
    with Cache(path) as c:
        assert c.get_json("k1") == {"a": [1, 2.5, "x", None, True]}
        assert c.count() == 2
        assert c.count("vec") == 1
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_closed_cache_refuses(cache: Cache) -> None:
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.get_json("k")


def test_many_keys_in_batches(cache: Cache) -> None:
    items: dict[str, JsonValue] = {f"k{i}": i for i in range(1_200)}  # more than one IN (...) batch
    cache.set_many_json(dict(items), namespace="n")
    got = cache.get_many_json([*items, "nope"])
    assert got == items


def test_key_covers_everything_that_produced_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_key("summary", "content", producer="model-a", version="v1")
    assert base == make_key("summary", "content", producer="model-a", version="v1")
    assert base != make_key("embedding", "content", producer="model-a", version="v1")
    assert base != make_key("summary", "content!", producer="model-a", version="v1")
    assert base != make_key("summary", "content", producer="model-b", version="v1")
    assert base != make_key("summary", "content", producer="model-a", version="v2")
    monkeypatch.setattr(cache_module, "SCHEMA_VERSION", 999)
    assert base != make_key("summary", "content", producer="model-a", version="v1")


async def test_concurrent_use_from_tasks_and_threads(cache: Cache) -> None:
    async def writer(i: int) -> None:
        await asyncio.to_thread(cache.set_json, f"t{i}", i, namespace="n")
        assert await asyncio.to_thread(cache.get_json, f"t{i}") == i

    await asyncio.gather(*(writer(i) for i in range(50)))
    threads = [
        threading.Thread(
            target=cache.set_bytes, args=(f"b{i}", bytes([i])), kwargs={"namespace": "b"}
        )
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.count("n") == 50
    assert cache.count("b") == 20


def test_two_connections_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    with Cache(path) as a, Cache(path) as b:
        a.set_json("k", "from a", namespace="n")
        assert b.get_json("k") == "from a"


# --- the summarise stage with a cache ------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running(echo) as srv:
        yield srv


def llm(srv: FakeOpenAIServer, model: str = "fake-model", **kwargs: object) -> LLMSummariser:
    return LLMSummariser(client_for(srv), model=model, retry=FAST, **kwargs)  # type: ignore[arg-type]


async def test_second_run_is_served_from_cache(server: FakeOpenAIServer, cache: Cache) -> None:
    convs = [conv(f"c{i}", f"question {i}", "answer") for i in range(4)]
    first = await summarise(convs, summariser=llm(server), cache=cache)
    assert len(server.chat_requests) == 4
    assert first.cache_hits == 0
    second = await summarise(convs, summariser=llm(server), cache=cache)
    assert len(server.chat_requests) == 4  # zero LLM calls
    assert second.cache_hits == 4
    assert second.summaries == first.summaries


async def test_changed_conversation_misses(server: FakeOpenAIServer, cache: Cache) -> None:
    convs = [conv("c0", "question 0"), conv("c1", "question 1")]
    await summarise(convs, summariser=llm(server), cache=cache)
    changed = [convs[0], conv("c1", "question 1, edited")]
    result = await summarise(changed, summariser=llm(server), cache=cache)
    assert len(server.chat_requests) == 3
    assert result.cache_hits == 1
    assert result.summaries[1].summary == "The user asked about question 1, edited."


async def test_changed_model_or_prompt_version_misses(
    server: FakeOpenAIServer, cache: Cache
) -> None:
    convs = [conv("c0", "question 0")]
    await summarise(convs, summariser=llm(server), cache=cache)
    await summarise(convs, summariser=llm(server, model="other-model"), cache=cache)
    assert len(server.chat_requests) == 2
    v2 = SummaryPrompt(version="clio-summary-v2")
    await summarise(convs, summariser=llm(server, prompt=v2), cache=cache)
    assert len(server.chat_requests) == 3
    reworded = SummaryPrompt(instructions=SummaryPrompt().instructions + " Be brief.")
    await summarise(convs, summariser=llm(server, prompt=reworded), cache=cache)
    assert len(server.chat_requests) == 4  # same version, other words: still a miss


async def test_cached_summary_is_readdressed_to_the_conversation(
    server: FakeOpenAIServer, cache: Cache
) -> None:
    await summarise([conv("c0", "same words")], summariser=llm(server), cache=cache)
    other = conv("other-id", "same words", metadata={"mail": "a.b@example.com", "n": 3})
    result = await summarise([other], summariser=llm(server), cache=cache)
    assert len(server.chat_requests) == 1
    (s,) = result.summaries
    assert s.chat_id == "other-id"
    assert s.metadata == {"mail": "[EMAIL]", "n": 3}


async def test_failures_are_not_cached(server: FakeOpenAIServer, cache: Cache) -> None:
    convs = [conv("c0", "POISON")]
    for _ in range(2):
        result = await summarise(convs, summariser=llm(server), cache=cache)
        assert [cid for cid, _ in result.failures] == ["c0"]
    assert cache.count("summary") == 0
    assert len(server.chat_requests) == 2 * (FAST.validation_retries + 1)
