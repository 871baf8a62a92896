"""Helpers the consumer apps share: a configured FastStream broker and confirmed publishing."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from kura_stream.adapters.kafka_client import (
    PRODUCE_BATCH_BYTES,
    RETRY_BACKOFF_MS,
    aiokafka_kwargs,
)
from kura_stream.settings import KafkaSettings


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
    await asyncio.gather(*futures)


def records_of(msg: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The raw records behind a FastStream message, one or a batch."""
    raw = msg.raw_message
    if isinstance(raw, list):  # FastStream's TestKafkaBroker hands a batch over as a list
        return tuple(raw)
    return raw if isinstance(raw, tuple) else (raw,)
