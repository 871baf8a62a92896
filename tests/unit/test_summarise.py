"""LLMSummariser and the summarise stage against a fake OpenAI-compatible server."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import instructor
import openai
import pytest

from kura_stream.adapters.llm.calls import RetryPolicy
from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm.summariser import LLMSummariser
from kura_stream.errors import EndpointUnavailableError
from kura_stream.protocols import Summariser
from kura_stream.settings import LLMSettings
from kura_stream.stages.prompts import FacetSpec, SummaryPrompt
from kura_stream.stages.summarise import (
    SummaryError,
    dead_letter,
    render_conversation,
    summarise,
)
from kura_stream.stages.token_budget import estimate_tokens
from kura_stream.types import Conversation, Message, Summary
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    content,
    error,
    garbage,
    running,
    timeout,
    tool,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FAST = RetryPolicy(validation_retries=1, attempts=3, base_delay_s=0.01, max_delay_s=0.02)


def conv(chat_id: str, *turns: str, metadata: dict[str, Any] | None = None) -> Conversation:
    roles = ("user", "assistant")
    return Conversation(
        chat_id=chat_id,
        created_at=T0,
        messages=tuple(
            Message(created_at=T0, role=roles[i % 2], content=t) for i, t in enumerate(turns)
        ),
        metadata=metadata or {},
    )


def facets(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "summary": "The user asked for help reversing a list in a programming language.",
        "request": "The user's overall request for the assistant is to reverse a list.",
        "task": "The task is to explain how to reverse a list.",
        "topic": "software development",
        "languages": ["English", "python"],
        "concerning_score": 1,
        "user_frustration": 2,
        "assistant_errors": ["None"],
    }
    return {**base, **overrides}


def first_user_text(request: RecordedRequest) -> str:
    m = re.search(r"<message>user: (.*?)(?:</message>|\n)", request.prompt_text)
    return m.group(1) if m else ""


def echo(request: RecordedRequest) -> Reply:
    """Valid facets whose summary names the user's first words; POISON gets invalid output."""
    text = first_user_text(request)
    if "POISON" in text:
        return tool(facets(concerning_score=9))
    return tool(facets(summary=f"The user asked about {text}."))


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running(echo) as srv:
        yield srv


def client_for(srv: FakeOpenAIServer, mode: instructor.Mode = instructor.Mode.TOOLS) -> Any:
    settings = LLMSettings(base_url=srv.base_url, model="fake-model", timeout_s=0.5)
    return make_instructor_client(settings, mode=mode)


def summariser(srv: FakeOpenAIServer, **kwargs: Any) -> LLMSummariser:
    kwargs.setdefault("retry", FAST)
    return LLMSummariser(client_for(srv), model="fake-model", **kwargs)


async def test_summary_validates_and_scrubs_and_names_itself(server: FakeOpenAIServer) -> None:
    s = summariser(server)
    assert isinstance(s, Summariser)
    assert s.name.startswith("llm:fake-model:clio-summary-v1-")
    assert s.name.endswith(":s1")
    out = await s.summarise(conv("c1", "reverse a list", "use reversed()", metadata={"k": "v"}))
    assert isinstance(out, Summary)
    assert out.chat_id == "c1"
    assert out.summariser == s.name
    assert out.summary == "The user asked about reverse a list."
    assert out.languages == ("english", "python")
    assert (out.concerning_score, out.user_frustration) == (1, 2)
    assert out.assistant_errors == ()  # "None" is not an error
    assert out.metadata == {"k": "v"}
    body = server.chat_requests[0].body
    assert body["model"] == "fake-model"
    assert body["tools"][0]["function"]["name"] == "ClioFacets"


async def test_user_facets_are_asked_and_kept(server: FakeOpenAIServer) -> None:
    specs = [
        FacetSpec(name="sentiment", question="What is the user's overall sentiment?"),
        FacetSpec(name="steps", question="How many steps did the solution take?", type="int"),
        FacetSpec(name="has_code", question="Does the conversation contain code?", type="bool"),
        FacetSpec(name="libraries", question="Which libraries are named?", type="list[str]"),
    ]
    extra = {"sentiment": "positive", "steps": 3, "has_code": True, "libraries": ["numpy"]}
    server.script(tool(facets(**extra)))
    s = summariser(server, facets=specs)
    out = await s.summarise(conv("c1", "hello"))
    assert out.facets == extra
    request = server.chat_requests[0]
    props = request.body["tools"][0]["function"]["parameters"]["properties"]
    assert {"sentiment", "steps", "has_code", "libraries"} <= set(props)
    assert "How many steps did the solution take?" in request.prompt_text
    assert s.name != summariser(server).name  # facets change the output, so the identity


def test_facet_names_cannot_shadow_summary_fields() -> None:
    with pytest.raises(ValueError, match="own fields"):
        FacetSpec(name="summary", question="What?")
    with pytest.raises(ValueError, match="pattern"):
        FacetSpec(name="Bad Name", question="What?")


async def test_md_json_mode_works(server: FakeOpenAIServer) -> None:
    import json

    server.script(content("```json\n" + json.dumps(facets()) + "\n```"))
    s = LLMSummariser(client_for(server, instructor.Mode.MD_JSON), model="m", retry=FAST)
    out = await s.summarise(conv("c1", "hi"))
    assert out.task == "The task is to explain how to reverse a list."


@pytest.mark.parametrize("failure", [error(500), error(429), timeout(2.0), garbage()])
async def test_transient_failures_are_retried(server: FakeOpenAIServer, failure: Reply) -> None:
    server.script(failure)
    out = await summariser(server).summarise(conv("c1", "reverse a list"))
    assert out.summary == "The user asked about reverse a list."
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize("failure", [error(503, "overloaded"), error(429), timeout(2.0)])
async def test_an_endpoint_that_never_answers_is_unavailable_not_a_bad_conversation(
    server: FakeOpenAIServer, failure: Reply
) -> None:
    server.responder = lambda _: failure
    with pytest.raises(EndpointUnavailableError) as info:
        await summariser(server).summarise(conv("c1", "hi"))
    assert "after 3 attempts" in info.value.reason
    assert len(server.chat_requests) == FAST.attempts


async def test_a_refused_connection_is_unavailable() -> None:
    from tests.fixtures_kafka import free_ports

    client = instructor.from_openai(
        openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{free_ports(1)[0]}/v1", api_key="x", max_retries=0
        ),
        mode=instructor.Mode.TOOLS,
    )
    with pytest.raises(EndpointUnavailableError, match="connection error"):
        await LLMSummariser(client, model="m", retry=FAST).summarise(conv("c1", "hi"))


async def test_answers_that_never_parse_are_a_summary_error(server: FakeOpenAIServer) -> None:
    server.responder = lambda _: garbage()
    with pytest.raises(SummaryError) as info:
        await summariser(server).summarise(conv("c1", "hi"))
    assert "after 3 attempts" in info.value.reason


async def test_client_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.script(error(400, "context length exceeded"))
    with pytest.raises(SummaryError, match="HTTP 400"):
        await summariser(server).summarise(conv("c1", "hi"))
    assert len(server.chat_requests) == 1


async def test_invalid_output_is_reasked_then_fails(server: FakeOpenAIServer) -> None:
    with pytest.raises(SummaryError, match="invalid output") as info:
        await summariser(server).summarise(conv("c1", "POISON"))
    assert "concerning_score" in info.value.reason
    assert len(server.chat_requests) == FAST.validation_retries + 1
    # instructor shows the model its validation error on the re-ask
    assert "less than or equal to 5" in server.chat_requests[-1].prompt_text


async def test_invalid_then_valid_output(server: FakeOpenAIServer) -> None:
    server.script(tool(facets(user_frustration=0)), tool("{not json"))
    s = summariser(server, retry=RetryPolicy(validation_retries=2, base_delay_s=0.01))
    out = await s.summarise(conv("c1", "reverse a list"))
    assert out.user_frustration == 2
    assert len(server.chat_requests) == 3


async def test_personal_data_is_scrubbed_before_and_after(server: FakeOpenAIServer) -> None:
    server.script(tool(facets(summary="Mail jane.doe@example.com or call +44 20 7946 0958.")))
    c = conv(
        "c1",
        "My email is jane.doe@example.com and my card is 4111 1111 1111 1111",
        "Call me on +44 20 7946 0958",
        metadata={"contact": "jane.doe@example.com"},
    )
    out = await summariser(server).summarise(c)
    sent = server.chat_requests[0].prompt_text
    for secret in ("jane.doe@example.com", "4111 1111 1111 1111", "7946 0958"):
        assert secret not in sent
        assert secret not in out.model_dump_json()
    assert "[EMAIL]" in sent
    assert "[CARD]" in sent
    assert out.metadata == {"contact": "[EMAIL]"}


async def test_long_conversations_are_cut_to_the_budget(server: FakeOpenAIServer) -> None:
    filler = " ".join(f"word{i}" for i in range(400))
    turns = ["FIRST-REQUEST please help", *([filler] * 200), "LAST-WORDS thanks"]
    s = summariser(server, max_conversation_tokens=1000)
    await s.summarise(conv("c1", *turns))
    sent = server.chat_requests[0].prompt_text
    assert "FIRST-REQUEST" in sent
    assert "LAST-WORDS" in sent
    assert "tokens omitted" in sent
    assert "left out for length" in sent
    instructions = estimate_tokens(SummaryPrompt().instructions + SummaryPrompt().system)
    assert estimate_tokens(sent) <= 1000 + instructions + 100
    assert server.chat_requests[0].raw_size < 20_000  # the conversation alone is ~600 kB


def test_render_keeps_short_conversations_whole() -> None:
    text, cut = render_conversation(conv("c", "hi", "hello"), 100)
    assert not cut
    assert text == "<message>user: hi</message>\n<message>assistant: hello</message>"
    one_huge = conv("c", "START " + "x " * 50_000 + " END")
    text, cut = render_conversation(one_huge, 300)
    assert cut
    assert "START" in text
    assert "END" in text
    assert estimate_tokens(text) <= 300


def test_default_prompt_fits_a_4k_context(server: FakeOpenAIServer) -> None:
    """Measured on the local 0.5B server: a 93k-character ShareGPT conversation at this
    estimate (3,241) was 2,738 real prompt tokens with instructor's MD_JSON schema included,
    which leaves room for the 400 output tokens in a 4,096-token context."""
    huge = conv("c", *(["lorem ipsum dolor sit amet, " * 400] * 30))
    messages = summariser(server).build_messages(huge)
    assert sum(estimate_tokens(m["content"]) for m in messages) <= 3300


# --- the stage ---------------------------------------------------------------------------


def batch(n: int, poison: Sequence[int] = ()) -> list[Conversation]:
    return [conv(f"c{i}", f"{'POISON ' if i in poison else ''}question {i}") for i in range(n)]


async def test_stage_keeps_order_and_reports_every_failure(server: FakeOpenAIServer) -> None:
    convs = batch(6, poison=(2, 5))
    result = await summarise(convs, summariser=summariser(server), concurrency=3)
    assert [s.chat_id for s in result.summaries] == ["c0", "c1", "c3", "c4"]
    assert next(s.summary for s in result.summaries) == "The user asked about question 0."
    assert [cid for cid, _ in result.failures] == ["c2", "c5"]
    assert all("invalid output" in reason for _, reason in result.failures)
    dl = dead_letter(convs[2], result.failures[0][1])
    assert dl.stage == "summarise"
    assert dl.key == "c2"
    assert b"POISON" in dl.original


async def test_stage_bounds_concurrency() -> None:
    def slow(request: RecordedRequest) -> Reply:
        return tool(facets(), delay_s=0.15)

    with running(slow) as srv:
        result = await summarise(batch(8), summariser=summariser(srv), concurrency=3)
        assert len(result.summaries) == 8
        assert 2 <= srv.max_in_flight <= 3


async def test_stage_reports_progress_and_summarises_duplicates_once(
    server: FakeOpenAIServer,
) -> None:
    convs = [conv("a", "same"), conv("b", "same"), conv("c", "other")]
    seen: list[tuple[int, int]] = []
    result = await summarise(
        convs,
        summariser=summariser(server),
        concurrency=2,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert [s.chat_id for s in result.summaries] == ["a", "b", "c"]
    assert len(server.chat_requests) == 2
    assert seen[-1] == (3, 3)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


class Crashing:
    name = "fake:crashing"

    async def summarise(self, conversation: Conversation) -> Summary:
        if conversation.chat_id == "c1":
            raise RuntimeError("boom")
        return Summary(chat_id=conversation.chat_id, summary="ok")


async def test_unexpected_errors_become_failures_not_crashes() -> None:
    result = await summarise(batch(3), summariser=Crashing(), concurrency=1)
    assert [s.chat_id for s in result.summaries] == ["c0", "c2"]
    assert result.failures == [("c1", "RuntimeError: boom")]


async def test_stage_rejects_bad_concurrency() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await summarise([], summariser=Crashing(), concurrency=0)
