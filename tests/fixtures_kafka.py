"""Pytest plugin: a real Kafka broker for the test session, and a fresh topic name per test."""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from kura_stream.adapters.kafka_server import BrokerConfig, LocalKafkaServer
from kura_stream.settings import Settings


def free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on right now (held open together, so distinct)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def local_broker_config(data_dir: Path) -> BrokerConfig:
    """A broker config on free ports with its data in data_dir, sharing the project's jar cache."""
    port, controller_port = free_ports(2)
    return BrokerConfig(
        port=port,
        controller_port=controller_port,
        data_dir=data_dir,
        cache_dir=Settings().cache_dir,
    )


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaServer | None]:
    """The session's own broker, or None when KURA_KAFKA_BOOTSTRAP names an external one."""
    if os.environ.get("KURA_KAFKA_BOOTSTRAP"):
        yield None
        return
    broker = LocalKafkaServer(local_broker_config(tmp_path_factory.mktemp("kafka")))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafkaServer | None) -> str:
    """Bootstrap address of a real broker: KURA_KAFKA_BOOTSTRAP, or the session's own."""
    if kafka_broker is None:
        return os.environ["KURA_KAFKA_BOOTSTRAP"]
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (nothing is created; see ensure_topics)."""
    stem = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80].strip("-")
    return f"test-{stem}-{uuid.uuid4().hex[:8]}"
