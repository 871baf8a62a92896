"""LLMClusterNamer and LLMParentNamer against the fake server: bounded prompts, valid labels."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from kura_stream.adapters.llm.calls import RetryPolicy
from kura_stream.adapters.llm.namers import LLMClusterNamer, LLMParentNamer
from kura_stream.protocols import ClusterNamer, ParentNamer
from kura_stream.stages.label_checks import name_problem
from kura_stream.stages.llm_namers import NamingError, clean_slug, match_candidate
from kura_stream.stages.token_budget import estimate_tokens
from kura_stream.types import ClusterLabel, Summary
from tests.fakes.openai_server import FakeOpenAIServer, running, tool
from tests.unit.test_summarise import client_for

FAST = RetryPolicy(validation_retries=1, attempts=2, base_delay_s=0.01)
LABEL = {"summary": "Users asked for help. They fixed bugs.", "name": "Debug code", "slug": "x"}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running() as srv:
        yield srv


def cluster_namer(srv: FakeOpenAIServer, **kwargs: int) -> LLMClusterNamer:
    return LLMClusterNamer(client_for(srv), model="fake-model", retry=FAST, **kwargs)


def parent_namer(srv: FakeOpenAIServer) -> LLMParentNamer:
    return LLMParentNamer(client_for(srv), model="fake-model", retry=FAST)


def big_cluster(n: int, prefix: str) -> list[Summary]:
    words = " ".join(f"detail{i}" for i in range(150))  # each summary ~1,000 characters
    return [
        Summary(chat_id=f"{prefix}{i}", summary=f"{prefix} request number {i}: {words}")
        for i in range(n)
    ]


async def test_label_validates_and_is_scrubbed(server: FakeOpenAIServer) -> None:
    server.script(
        tool(
            {
                "summary": "Users asked to email bob@example.com about bugs.",
                "name": '"Debug Python import errors."',
                "slug": "Debug Python Imports",
            }
        )
    )
    namer = cluster_namer(server)
    assert isinstance(namer, ClusterNamer)
    label = await namer.label(big_cluster(3, "m"), big_cluster(2, "c"))
    assert label == ClusterLabel(
        name="Debug Python import errors",
        description="Users asked to email [EMAIL] about bugs.",
        slug="debug_python_imports",
    )
    # v2: a refused name is re-asked (new prompt text); the fallback namer is part of the
    # identity because it may produce the label.
    assert namer.name == "llm:fake-model:clio-cluster-v2:50+50x60:s1+offline:readable-v4"


async def test_prompt_is_bounded_for_a_10000_member_cluster(server: FakeOpenAIServer) -> None:
    members, contrast = big_cluster(10_000, "member"), big_cluster(500, "other")
    namer = cluster_namer(server)
    for shown_members, shown_contrast in ((members[:50], contrast[:50]), (members, contrast)):
        server.script(tool(LABEL))
        await namer.label(shown_members, shown_contrast)
        request = server.chat_requests[-1]
        assert estimate_tokens(request.prompt_text) <= namer.max_prompt_tokens
        assert request.raw_size < 20_000
        text = request.prompt_text
        assert "member request number 0" in text
        assert "other request number 0" in text
        assert "<contrastive_examples>" in text
        assert "NOT part of the group" in text
        assert "member request number 60" not in text  # never past the 50-member cap


async def test_each_statement_is_cut(server: FakeOpenAIServer) -> None:
    server.script(tool(LABEL))
    namer = cluster_namer(server, max_item_tokens=20)
    await namer.label(big_cluster(2, "m"), [])
    lines = [ln for ln in server.chat_requests[0].prompt_text.splitlines() if ln.startswith("- m")]
    assert len(lines) == 2
    assert all(estimate_tokens(ln) <= 21 and ln.endswith("...") for ln in lines)
    assert "<contrastive_examples>" not in server.chat_requests[0].prompt_text


async def test_empty_name_is_reasked_then_fails(server: FakeOpenAIServer) -> None:
    server.responder = lambda _: tool({"summary": "s", "name": "", "slug": ""})
    with pytest.raises(NamingError, match="invalid output"):
        await cluster_namer(server).label(big_cluster(1, "m"), [])
    with pytest.raises(ValueError, match="empty"):
        await cluster_namer(server).label([], [])


@pytest.mark.parametrize(
    "name",
    ["Miscellaneous", "General questions", "Various topics", "User requests", "Misc. chats"],
)
def test_generic_names_are_refused(name: str) -> None:
    assert name_problem(name) is not None


def test_specific_names_pass_and_long_ones_do_not() -> None:
    assert name_problem("Debug Python import errors") is None
    assert name_problem("Questions about train times") is None
    assert name_problem(" ".join(["word"] * 11)) is not None


async def test_a_generic_name_is_reasked_once(server: FakeOpenAIServer) -> None:
    server.script(
        tool({"summary": "Users asked things.", "name": "General questions", "slug": "x"}),
        tool(LABEL),
    )
    label = await cluster_namer(server).label(big_cluster(3, "m"), big_cluster(2, "c"))
    assert label.name == "Debug code"
    assert len(server.chat_requests) == 2
    reask = server.chat_requests[1].prompt_text
    assert '"General questions" cannot be used' in reask
    assert "m request number 0" in reask  # the same bounded statements, asked again


class Stub:
    """A fallback ClusterNamer that records its calls."""

    name = "stub"

    def __init__(self) -> None:
        self.calls = 0

    async def label(self, members: list[Summary], contrast: list[Summary]) -> ClusterLabel:
        self.calls += 1
        return ClusterLabel(name="Offline name", description="From the fallback.")


async def test_two_refused_names_fall_back_to_the_offline_name(
    server: FakeOpenAIServer,
) -> None:
    long_name = "Help users with " + " ".join(f"thing{i}" for i in range(12))
    server.script(
        tool({"summary": "s", "name": "Miscellaneous", "slug": ""}),
        tool({"summary": "s", "name": long_name, "slug": ""}),
    )
    stub = Stub()
    namer = LLMClusterNamer(client_for(server), model="fake-model", retry=FAST, fallback=stub)
    label = await namer.label(big_cluster(3, "m"), [])
    assert label.name == "Offline name"
    assert stub.calls == 1
    assert len(server.chat_requests) == 2  # asked once, re-asked once, never a third time
    assert namer.name.endswith("+stub")


async def test_default_fallback_is_the_offline_namer(server: FakeOpenAIServer) -> None:
    server.responder = lambda _: tool({"summary": "s", "name": "Various topics", "slug": ""})
    members = [
        Summary(chat_id=f"c{i}", summary=f"The user asks for a sourdough bread recipe, try {i}.")
        for i in range(6)
    ]
    label = await cluster_namer(server).label(members, [])
    assert "bread" in label.name.lower()
    assert name_problem(label.name) is None


def children(n: int) -> list[ClusterLabel]:
    return [
        ClusterLabel(name=f"Child cluster {i}", description="Users did things. " * 40)
        for i in range(n)
    ]


async def test_propose_parents_cleans_dedupes_and_caps(server: FakeOpenAIServer) -> None:
    names = ["Help with code.", "help with code", '"Plan trips"', "", "Cook food", "A", "B"]
    server.script(tool({"candidate_cluster_names": names}))
    namer = parent_namer(server)
    assert isinstance(namer, ParentNamer)
    got = await namer.propose_parents(children(500), desired=2)
    assert got == ["Help with code", "Plan trips", "Cook food"]  # at most 1.5 x desired
    request = server.chat_requests[0]
    assert "roughly 2 higher-level" in request.prompt_text
    assert estimate_tokens(request.prompt_text) <= namer.max_prompt_tokens
    assert len(re.findall("<cluster>", request.prompt_text)) <= namer.max_children


async def test_choose_parent_maps_answers_to_candidates(server: FakeOpenAIServer) -> None:
    candidates = ["Help with code", "Plan trips", "Cook food"]
    namer = parent_namer(server)
    child = children(1)[0]
    for answer, expected in (
        ("Plan trips", "Plan trips"),
        ("plan TRIPS.", "Plan trips"),
        ("Help with cod", "Help with code"),
    ):
        server.script(tool({"higher_level_cluster": answer}))
        assert await namer.choose_parent(child, candidates) == expected
    prompt = server.chat_requests[0].prompt_text
    assert all(f"<higher_level_cluster>{c}</higher_level_cluster>" in prompt for c in candidates)


async def test_choose_parent_reasks_invented_labels(server: FakeOpenAIServer) -> None:
    server.script(
        tool({"higher_level_cluster": "Something new"}),
        tool({"higher_level_cluster": "Cook food"}),
    )
    got = await parent_namer(server).choose_parent(children(1)[0], ["Plan trips", "Cook food"])
    assert got == "Cook food"
    assert "not one of the listed clusters" in server.chat_requests[1].prompt_text
    server.responder = lambda _: tool({"higher_level_cluster": "Invented"})
    with pytest.raises(NamingError):
        await parent_namer(server).choose_parent(children(1)[0], ["Plan trips"])


def test_match_candidate() -> None:
    cands = ["Help with code", "Plan trips"]
    assert match_candidate("2", cands) == "Plan trips"
    assert match_candidate("  help with code ", cands) == "Help with code"
    assert match_candidate("Write poems", cands) is None
    assert clean_slug("", "Debug Python import errors") == "debug_python_import"


async def test_label_parent_is_bounded_and_valid(server: FakeOpenAIServer) -> None:
    server.script(tool({"summary": "Users coded.", "name": "Write and fix code", "slug": ""}))
    namer = parent_namer(server)
    label = await namer.label_parent(children(1000))
    assert label == ClusterLabel(
        name="Write and fix code", description="Users coded.", slug="write_and_fix"
    )
    request = server.chat_requests[0]
    assert estimate_tokens(request.prompt_text) <= namer.max_prompt_tokens
    assert request.messages[0]["role"] == "system"
