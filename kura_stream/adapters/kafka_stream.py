"""The FastStream side of Kafka: the configured broker, confirmed publishing, the outputs.

The consumers (entry points) subscribe on this broker; the service's use cases publish
through `KafkaOutputs`, which implements `service.outputs.Outputs`.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections.abc import Sequence

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from kura_stream.adapters.kafka_client import (
    PRODUCE_BATCH_BYTES,
    RETRY_BACKOFF_MS,
    aiokafka_kwargs,
)
from kura_stream.settings import KafkaSettings
from kura_stream.types import (
    Assignment,
    ClusterEvent,
    Command,
    DeadLetter,
    EmbeddedConversation,
)

KafkaRecord = ConsumerRecord[bytes, bytes]
"""One consumed record as the handlers see it (topic, partition, offset, key, value)."""
KAFKA_ERRORS: tuple[type[Exception], ...] = (KafkaError,)
"""The client's own failures: the broker away or refusing, never the record's fault."""


GRACEFUL_STOP_S = 120.0
"""On stop, how long the batches in flight may take to finish and commit. Without it
FastStream cancels them, and a stopped service's last batches were summarised again after
the restart (142 duplicates in test_sigterm_mid_stream_finishes_and_commits_what_is_in_flight)."""


def make_broker(settings: KafkaSettings) -> KafkaBroker:
    """A FastStream Kafka broker with the settings' servers and security, idempotent producer.

    Its producer, admin client and every subscriber's consumer retry after RETRY_BACKOFF_MS,
    not aiokafka's 100 ms, so a broker outage costs one attempt a second per client.
    """
    kwargs = dict(aiokafka_kwargs(settings))
    servers = str(kwargs.pop("bootstrap_servers"))
    kwargs.pop("security_protocol", None)
    security: BaseSecurity | None = None
    if settings.security_protocol != "PLAINTEXT":
        ssl_context = kwargs.get("ssl_context")
        context = ssl_context if isinstance(ssl_context, ssl.SSLContext) else None
        use_ssl = settings.security_protocol.endswith("SSL")
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        user = settings.sasl_username or ""
        if not settings.security_protocol.startswith("SASL"):
            security = BaseSecurity(ssl_context=context, use_ssl=use_ssl)
        elif settings.sasl_mechanism == "SCRAM-SHA-256":
            security = SASLScram256(user, password, ssl_context=context, use_ssl=use_ssl)
        elif settings.sasl_mechanism == "SCRAM-SHA-512":
            security = SASLScram512(user, password, ssl_context=context, use_ssl=use_ssl)
        else:
            security = SASLPlaintext(user, password, ssl_context=context, use_ssl=use_ssl)
    return KafkaBroker(
        servers,
        security=security,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=PRODUCE_BATCH_BYTES,
        retry_backoff_ms=RETRY_BACKOFF_MS,
        graceful_timeout=GRACEFUL_STOP_S,
        logger=None,
    )


async def publish_confirmed(
    broker: KafkaBroker, topic: str, messages: Sequence[tuple[str | None, bytes]]
) -> None:
    """Publish keyed messages and return only when the broker has acknowledged all of them."""
    if not messages:
        return
    futures = [
        await broker.publish(
            value,
            topic=topic,
            key=key.encode() if key is not None else None,
            no_confirm=True,
        )
        for key, value in messages
    ]
    # aiokafka answers each send with a future; FastStream's in-memory TestKafkaBroker has
    # delivered the message already and answers with its result.
    await asyncio.gather(*(f for f in futures if inspect.isawaitable(f)))


class KafkaOutputs:
    """The service's output topics on a FastStream broker (implements service.outputs.Outputs).

    Keys: chat_id for conversations and assignments, cluster_id for cluster events, the
    record's own key for dead letters; commands have none (one partition).
    """

    def __init__(self, broker: KafkaBroker, settings: KafkaSettings) -> None:
        """Publish on broker to the topics of settings."""
        self.broker = broker
        self.topics = settings

    async def embedded(self, items: Sequence[EmbeddedConversation]) -> None:
        """Publish summarised and embedded conversations."""
        messages = [(e.chat_id, e.model_dump_json().encode()) for e in items]
        await publish_confirmed(self.broker, self.topics.topic_embedded, messages)

    async def assignments(self, items: Sequence[Assignment]) -> None:
        """Publish assignments."""
        messages = [(a.chat_id, a.model_dump_json().encode()) for a in items]
        await publish_confirmed(self.broker, self.topics.topic_assignments, messages)

    async def cluster_events(self, events: Sequence[ClusterEvent]) -> None:
        """Publish cluster events."""
        messages = [(e.cluster_id, e.model_dump_json().encode()) for e in events]
        await publish_confirmed(self.broker, self.topics.topic_cluster_events, messages)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Publish dead letters."""
        messages = [(d.key, d.model_dump_json().encode()) for d in dead]
        await publish_confirmed(self.broker, self.topics.topic_dlq, messages)

    async def command(self, command: Command) -> None:
        """Publish a command."""
        message = [(None, command.model_dump_json().encode())]
        await publish_confirmed(self.broker, self.topics.topic_commands, message)
