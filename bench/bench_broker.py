"""The Kafka broker a benchmark runs against: KURA_KAFKA_BOOTSTRAP, or one of its own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from kura_stream.adapters.kafka_server import LocalKafkaServer
from tests.fixtures_kafka import local_broker_config


@contextlib.contextmanager
def bench_broker(folder: Path) -> Iterator[str]:
    """Yield a bootstrap address: KURA_KAFKA_BOOTSTRAP when set, else a broker started here
    on free ports (its data under folder), stopped when the block ends."""
    bootstrap = os.environ.get("KURA_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    broker = LocalKafkaServer(local_broker_config(folder / "kafka"))
    try:
        yield broker.start().bootstrap
    finally:
        broker.stop()
