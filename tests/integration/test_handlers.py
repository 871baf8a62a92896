"""Each consumer's handler, run the same way in memory (TestKafkaBroker) and on the real broker.

The handlers are FastStream functions with their use cases injected from the broker's
context, so a test wires small real collaborators (a memory store, a hashing embedder) and
watches what the handler publishes. `with_real=True` runs the very same body through the
session's Apache Kafka broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from consumers import assign, name, recompute, summarise_embed
from kura_stream.adapters.kafka_stream import KafkaOutputs
from kura_stream.service.assigner import Assigner
from kura_stream.service.ingest import Ingestor
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.settings import KafkaSettings
from kura_stream.stages.assign import AssignParams
from kura_stream.types import (
    ClusterEvent,
    ClusterEventKind,
    Command,
    Conversation,
    EmbeddedConversation,
    Message,
    Summary,
)
from tests.fakes.hash_embedder import HashEmbedder
from tests.fakes.memory_store import MemoryClusterStore

pytestmark = pytest.mark.kafka

DIM = 32
WAIT_S = 60.0


def _kafka(bootstrap: str) -> KafkaSettings:
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap=bootstrap,
        topic_conversations=f"h-conv-{tag}",
        topic_embedded=f"h-emb-{tag}",
        topic_dlq=f"h-dlq-{tag}",
        topic_assignments=f"h-asg-{tag}",
        topic_cluster_events=f"h-evt-{tag}",
        topic_commands=f"h-cmd-{tag}",
        group_id=f"h-{tag}",
    )


class Captured:
    """What a handler published, by topic."""

    def __init__(self) -> None:
        self.by_topic: dict[str, list[dict[str, Any]]] = {}

    def subscribe(self, broker: KafkaBroker, topic: str, group: str) -> None:
        async def keep(body: dict[str, Any]) -> None:
            self.by_topic.setdefault(topic, []).append(body)

        broker.subscriber(topic, group_id=group, auto_offset_reset="earliest")(keep)

    async def wait(self, topic: str, n: int) -> list[dict[str, Any]]:
        await _until(lambda: len(self.by_topic.get(topic, [])) >= n)
        return self.by_topic.get(topic, [])


async def _until(done: Callable[[], bool]) -> None:
    """Poll until done() or WAIT_S have passed (the assertions after it say what was missing)."""
    for _ in range(int(WAIT_S * 10)):
        if done():
            return
        await asyncio.sleep(0.1)


@pytest.fixture(params=[False, True], ids=["in-memory", "real-broker"])
async def wired(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> AsyncIterator[tuple[KafkaBroker, KafkaSettings, Captured, dict[str, Any]]]:
    kafka = _kafka(kafka_bootstrap)
    broker = KafkaBroker(kafka_bootstrap, logger=None)
    store = MemoryClusterStore(DIM)
    metrics = ServiceMetrics()
    params = AssignParams(join_similarity=0.5, birth_similarity=0.5, min_birth_size=2)
    context: dict[str, Any] = {
        "ingestor": Ingestor(
            summarise=_summarise, embedder=HashEmbedder(dim=DIM), max_bytes=100_000, concurrency=2
        ),
        "assigner": Assigner(store, params, min_size_shown=2),
        "write_lock": asyncio.Lock(),
        "outputs": KafkaOutputs(broker, kafka),
        "metrics": metrics,
        "naming": RecordingNaming(),
        "recomputer": RecordingRecomputer(),
    }
    captured = Captured()
    for topic in (kafka.topic_embedded, kafka.topic_dlq, kafka.topic_assignments):
        captured.subscribe(broker, topic, f"{kafka.group_id}-capture")
    yield broker, kafka, captured, context
    _ = request


async def _summarise(c: Conversation) -> Summary:
    return Summary(chat_id=c.chat_id, summary=c.messages[0].content)


class RecordingNaming:
    """Stands in for ClusterNaming: the name handler only hands it the parsed events."""

    def __init__(self) -> None:
        self.calls: list[Sequence[ClusterEvent]] = []

    async def __call__(self, events: Sequence[ClusterEvent]) -> None:
        self.calls.append(list(events))


class RecordingRecomputer:
    """Stands in for Recomputer: the commands handler only calls run and rename."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.renames: list[tuple[str, str]] = []

    async def run(self, request_id: str) -> None:
        self.runs.append(request_id)

    async def rename(self, cluster_id: str, name: str) -> None:
        self.renames.append((cluster_id, name))


def _set_context(broker: KafkaBroker, *contexts: dict[str, Any]) -> None:
    for context in contexts:
        for key, value in context.items():
            broker.context.set_global(key, value)


def _conversation(chat_id: str, text: str) -> bytes:
    now = datetime.now(UTC)
    message = Message(created_at=now, role="user", content=text)
    return (
        Conversation(chat_id=chat_id, created_at=now, messages=(message,))
        .model_dump_json()
        .encode()
    )


async def test_summarise_embed_publishes_embedded_and_dead_letters(
    wired: tuple[KafkaBroker, KafkaSettings, Captured, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    broker, kafka, captured, context = wired
    broker.include_router(summarise_embed.router(kafka, consumers=1))
    _set_context(broker, context, summarise_embed.context())
    real = "real-broker" in request.node.callspec.id
    async with TestKafkaBroker(broker, with_real=real) as test_broker:
        for i in range(3):
            await test_broker.publish(
                _conversation(f"c{i}", f"sort a list {i}"), topic=kafka.topic_conversations
            )
        await test_broker.publish(b"[" * 5000, topic=kafka.topic_conversations)
        embedded = await captured.wait(kafka.topic_embedded, 3)
        dead = await captured.wait(kafka.topic_dlq, 1)
    assert sorted(e["chat_id"] for e in embedded) == ["c0", "c1", "c2"]
    assert [d["stage"] for d in dead] == ["parse"]
    assert context["metrics"].dead_letters_total == 1


def _embedded(i: int) -> bytes:
    vector = HashEmbedder(dim=DIM).embed([f"topic {i % 2} about lists"])[0]
    now = datetime.now(UTC)
    return (
        EmbeddedConversation(
            chat_id=f"e{i}",
            summary=Summary(chat_id=f"e{i}", summary="s"),
            vector=tuple(float(x) for x in vector),
            embedder="hash",
            created_at=now,
            received_at=now,
            content_hash=f"h{i}",
        )
        .model_dump_json()
        .encode()
    )


async def test_assign_places_publishes_and_dead_letters_bad_vectors(
    wired: tuple[KafkaBroker, KafkaSettings, Captured, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    broker, kafka, captured, context = wired
    broker.include_router(assign.router(kafka))
    _set_context(broker, context, assign.context())
    real = "real-broker" in request.node.callspec.id
    async with TestKafkaBroker(broker, with_real=real) as test_broker:
        for i in range(4):
            await test_broker.publish(_embedded(i), topic=kafka.topic_embedded)
        await test_broker.publish(b'{"chat_id": "x"}', topic=kafka.topic_embedded)
        placed = await captured.wait(kafka.topic_assignments, 4)
        dead = await captured.wait(kafka.topic_dlq, 1)
    assert {a["chat_id"] for a in placed} == {"e0", "e1", "e2", "e3"}
    assert dead[0]["stage"] == "assign"
    assert context["assigner"].store.count_conversations() == 4


async def test_name_hands_the_parsed_events_to_naming(
    wired: tuple[KafkaBroker, KafkaSettings, Captured, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    broker, kafka, _, context = wired
    broker.include_router(name.router(kafka, background=False))
    _set_context(broker, context, name.context())
    real = "real-broker" in request.node.callspec.id
    event = ClusterEvent(kind=ClusterEventKind.CREATED, cluster_id="k1", count=5)
    async with TestKafkaBroker(broker, with_real=real) as test_broker:
        await test_broker.publish(
            event.model_dump_json().encode(), topic=kafka.topic_cluster_events
        )
        naming: RecordingNaming = context["naming"]
        await _until(lambda: bool(naming.calls))
    assert [[e.cluster_id for e in call] for call in naming.calls] == [["k1"]]


async def test_commands_run_rename_and_dead_letter_bad_commands(
    wired: tuple[KafkaBroker, KafkaSettings, Captured, dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    broker, kafka, captured, context = wired
    broker.include_router(recompute.router(kafka))
    _set_context(broker, context, recompute.context())
    real = "real-broker" in request.node.callspec.id
    if real:  # the commands group starts at the log end: join it before publishing
        from consumers.serve import prepare_topics
        from kura_stream.settings import Settings

        await prepare_topics(Settings(kafka=kafka))
    recomputer: RecordingRecomputer = context["recomputer"]
    async with TestKafkaBroker(broker, with_real=real) as test_broker:
        commands = [
            Command(kind="recompute", request_id="r1"),
            Command(kind="rename", cluster_id="k1", name="Sorting lists"),
        ]
        for command in commands:
            await test_broker.publish(
                command.model_dump_json().encode(), topic=kafka.topic_commands
            )
        await test_broker.publish(b'{"kind": "explode"}', topic=kafka.topic_commands)
        dead = await captured.wait(kafka.topic_dlq, 1)
        await _until(lambda: bool(recomputer.renames))
    assert recomputer.runs == ["r1"]
    assert recomputer.renames == [("k1", "Sorting lists")]
    assert "invalid command" in dead[0]["reason"]
