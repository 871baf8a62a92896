"""CallSlots: the process's bound on LLM calls in flight, held one attempt at a time."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from kura_stream.adapters.llm.calls import CallSlots, RetryPolicy, _wrapped
from kura_stream.adapters.llm.summariser import LLMSummariser
from kura_stream.settings import LLMSettings
from kura_stream.stages.summarise import summarise, summarise_window
from tests.fakes.openai_server import RecordedRequest, Reply, error, running, tool
from tests.unit.test_summarise import Crashing, batch, client_for, conv, facets

FAST = RetryPolicy(validation_retries=1, attempts=3, base_delay_s=0.05, max_delay_s=0.05)


async def test_slots_bound_calls_in_flight() -> None:
    slots = CallSlots(2)
    seen: list[int] = []

    async def call() -> None:
        async with slots.slot():
            seen.append(slots.in_flight)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(call() for _ in range(7)))
    assert max(seen) == 2
    assert slots.peak == 2
    assert slots.in_flight == 0


async def test_a_retry_is_served_before_first_attempts() -> None:
    slots = CallSlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.slot():
            await release.wait()

    async def call(name: str, *, retry: bool) -> None:
        async with slots.slot(retry=retry):
            order.append(name)

    tasks = [asyncio.create_task(holder())]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(call(f"first{i}", retry=False)) for i in range(2)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(call("retry", retry=True)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["retry", "first0", "first1"]


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    slots = CallSlots(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.slot():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert slots.in_flight == 0
    async with slots.slot():
        assert slots.in_flight == 1


def test_slots_refuse_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="limit"):
        CallSlots(0)


def summariser_with_slots(srv: Any, limit: int) -> LLMSummariser:
    return LLMSummariser(client_for(srv), model="fake-model", retry=FAST, slots=CallSlots(limit))


async def test_a_call_backing_off_holds_no_slot() -> None:
    """With one slot, the second conversation's call runs while the first backs off."""
    lock = threading.Lock()
    failed: set[str] = set()

    def first_fails_once(request: RecordedRequest) -> Reply:
        with lock:
            if "question 0" in request.prompt_text and "c0" not in failed:
                failed.add("c0")
                return error(500)
        return tool(facets(), delay_s=0.02)

    with running(first_fails_once) as srv:
        s = summariser_with_slots(srv, 1)
        result = await summarise(batch(2), summariser=s, concurrency=1)
        assert [x.chat_id for x in result.summaries] == ["c0", "c1"]
        assert srv.max_in_flight == 1
        order = ["question 0" in r.prompt_text for r in srv.chat_requests]
        assert order == [True, False, True]  # c1 went while c0 waited to try again


async def test_slots_bound_the_stage_whatever_its_window() -> None:
    def slow(request: RecordedRequest) -> Reply:
        return tool(facets(), delay_s=0.05)

    with running(slow) as srv:
        s = summariser_with_slots(srv, 3)
        assert summarise_window(s, 3) == 10
        result = await summarise(batch(12), summariser=s, concurrency=3)
        assert len(result.summaries) == 12
        assert 2 <= srv.max_in_flight <= 3


def test_the_window_is_the_concurrency_without_slots() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", concurrency=4)
    plain = LLMSummariser(client_for_url(settings), model="m")
    assert plain.call_window is None
    assert summarise_window(plain, 5) == 5
    assert summarise_window(Crashing(), 5) == 5
    built = LLMSummariser.from_settings(client_for_url(settings), settings)
    assert built.slots is not None
    assert built.slots.limit == 4
    assert summarise_window(built, 4) == 12


def client_for_url(settings: LLMSettings) -> Any:
    from kura_stream.adapters.llm.client import make_instructor_client

    return make_instructor_client(settings)


def test_response_models_are_wrapped_once() -> None:
    class Answer(BaseModel):
        text: str

    wrapped = _wrapped(Answer)
    assert _wrapped(Answer) is wrapped
    assert issubclass(wrapped, Answer)
    assert _wrapped(wrapped) is wrapped


async def test_wrapped_models_still_validate() -> None:
    with running(lambda _: tool(facets(summary="Reversing a list."))) as srv:
        s = summariser_with_slots(srv, 2)
        out = await s.summarise(conv("c1", "reverse a list"))
        assert out.summary == "Reversing a list."
