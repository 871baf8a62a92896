"""Kafka client helpers: connection kwargs from Settings, metadata probes, topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kura_stream.adapters.processes import ServiceError
from kura_stream.settings import KafkaSettings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
METADATA_WAIT_S = 10.0
"""How long to wait for a topic just created to show in the metadata."""
_TOPIC_ALREADY_EXISTS = 36


class _RedactedKwargs(dict[str, object]):
    """Connection kwargs whose repr never shows the SASL password."""

    def __repr__(self) -> str:
        shown = {k: ("**********" if k == "sasl_plain_password" else v) for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


PRODUCE_BATCH_BYTES = 512 * 1024
"""Most bytes per produce batch and partition. aiokafka keeps one batch in flight per
partition, so with its 16 KiB default a 256-record batch of embedded conversations took about
fifty round trips to publish (0.15-0.35 s); below the broker's 1 MB message.max.bytes."""

RETRY_BACKOFF_MS = 1000
"""aiokafka's pause before retrying a failed connect, fetch, metadata update or coordinator
lookup (its default is 100 ms). aiokafka 0.14 has no reconnect_backoff_ms, so this is the
only backoff there is: while the broker is down each consumer and producer retries once a
second instead of ten times, and the log filter (kura_stream.log_throttle) keeps what is left
to one line per kind and a summary per 30 s. It costs at most a second more when a group
first finds its coordinator on a fresh broker, and after an outage ends."""


def aiokafka_kwargs(settings: KafkaSettings) -> dict[str, object]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin) from KafkaSettings.

    Args:
        settings: The Kafka section of Settings.

    Returns:
        bootstrap_servers, security_protocol, retry_backoff_ms and, as the protocol needs them,
        an SSL context and the SASL mechanism, user name and password. The password is the
        plain value (aiokafka needs it), but the returned mapping's repr masks it, so logging
        the kwargs is safe.
    """
    kwargs = _RedactedKwargs(
        bootstrap_servers=settings.bootstrap,
        security_protocol=settings.security_protocol,
        retry_backoff_ms=RETRY_BACKOFF_MS,
    )
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        # aiokafka refuses SSL without a context; the system CAs are the sane default.
        kwargs["ssl_context"] = ssl.create_default_context()
    if settings.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            kwargs["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    logger.debug("aiokafka connection: %r", kwargs)
    return kwargs


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """The host and port of the first entry of a comma-separated bootstrap list.

    Raises:
        ValueError: the entry is not host:port.
    """
    first = bootstrap.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"bootstrap {bootstrap!r} is not host:port")
    return host, int(port)


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _client_kwargs(bootstrap: str, client_kwargs: Mapping[str, object] | None) -> dict[str, Any]:
    """client_kwargs for bootstrap, with our retry backoff unless they set their own."""
    return {
        "retry_backoff_ms": RETRY_BACKOFF_MS,
        **(client_kwargs or {}),
        "bootstrap_servers": bootstrap,
    }


@contextlib.asynccontextmanager
async def _started_admin(kwargs: Mapping[str, Any]) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out even when start() itself failed.

    A client whose start() failed still holds its metadata task and connections: not closing
    it leaked one per call (every 5 s from the lag monitor while the broker was down).
    """
    admin = AIOKafkaAdminClient(**kwargs)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def _started_consumer(
    kwargs: Mapping[str, Any], **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer, stopped on the way out even when start() itself failed."""
    consumer = AIOKafkaConsumer(**kwargs, **options)
    try:
        await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def describe_cluster(bootstrap: str, *, timeout_s: float = 5.0) -> dict[str, object] | None:
    """A metadata request to the broker: its cluster id and brokers, or None if it does not answer.

    Args:
        bootstrap: host:port of the broker.
        timeout_s: How long to wait for the answer.
    """
    host, port = parse_bootstrap(bootstrap)
    if not port_open(port, host):  # aiokafka logs an ERROR for every refused connection
        return None
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            answer: dict[str, object] = await admin.describe_cluster()
            return answer
    except Exception as err:  # any failure means "not answering yet"
        logger.debug("metadata request to %s failed: %r", bootstrap, err)
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    client_kwargs: Mapping[str, object] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Args:
        bootstrap: host:port list of the cluster.
        names: Topic names.
        partitions: Partitions of each topic created.
        replication_factor: Replicas of each topic created.
        client_kwargs: Extra aiokafka kwargs (security, SASL), e.g. from aiokafka_kwargs().

    Returns:
        The names created by this call.

    Raises:
        ServiceError: the broker refused to create a topic.
    """
    wanted = list(dict.fromkeys(names))
    async with _started_admin(_client_kwargs(bootstrap, client_kwargs)) as admin:
        existing = {t["topic"]: t for t in await admin.describe_topics() if not t["error_code"]}
        for name in wanted:
            if name in existing and len(existing[name]["partitions"]) < partitions:
                logger.warning(
                    "topic %s exists with %d partitions (< %d); left unchanged",
                    name, len(existing[name]["partitions"]), partitions,
                )  # fmt: skip
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication_factor) for n in missing]
        )
        created = []
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != _TOPIC_ALREADY_EXISTS:  # a concurrent creator won the race: fine
                raise ServiceError(f"creating topic {topic} failed: error {code} {rest}")
        logger.info("created topics %s (%d partitions)", created, partitions)
        return created


async def topic_partitions(
    bootstrap: str, topic: str, client_kwargs: Mapping[str, object] | None = None
) -> list[int]:
    """The partition numbers of topic, waiting up to METADATA_WAIT_S for a topic just created.

    Raises:
        ServiceError: the topic has no partitions in the broker's metadata by then.
    """
    async with _started_admin(_client_kwargs(bootstrap, client_kwargs)) as admin:
        return await _partitions(admin, topic)


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + METADATA_WAIT_S
    while True:
        described = await admin.describe_topics([topic])
        found = [t for t in described if t["topic"] == topic and not t["error_code"]]
        partitions = sorted(p["partition"] for t in found for p in t["partitions"])
        if partitions:
            return partitions
        if loop.time() >= deadline:
            raise ServiceError(f"topic {topic} has no partitions after {METADATA_WAIT_S}s")
        await asyncio.sleep(0.2)


async def consumer_lag(
    bootstrap: str,
    group_id: str,
    topic: str,
    *,
    client_kwargs: Mapping[str, object] | None = None,
) -> int:
    """Messages in topic not yet committed by group_id (all of them if it never committed).

    Both clients it starts are closed again whatever fails, start() included.

    Raises:
        KafkaError: the broker does not answer (KafkaConnectionError) or refuses.
    """
    from aiokafka import TopicPartition
    from aiokafka.errors import GroupCoordinatorNotAvailableError

    kwargs = _client_kwargs(bootstrap, client_kwargs)
    async with (
        _started_admin(kwargs) as admin,
        _started_consumer(kwargs, enable_auto_commit=False) as consumer,
    ):
        tps = [TopicPartition(topic, p) for p in await _partitions(admin, topic)]
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        try:
            committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
        except GroupCoordinatorNotAvailableError:  # no group has committed on this cluster yet
            committed = {}
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else begins[tp]
            lag += max(ends[tp] - done, 0)
        return lag


async def start_group_at_end(
    bootstrap: str,
    group_id: str,
    topic: str,
    *,
    client_kwargs: Mapping[str, object] | None = None,
) -> bool:
    """Commit the log end offsets for a group that has never committed on topic.

    A new group then starts from what is sent from now on, with no window in which a message
    could slip past an "auto_offset_reset=latest" consumer that is still joining. Call it
    before the group's consumers start (a group with members refuses outside commits).

    Returns:
        True if offsets were committed; False if the group already had offsets.

    Raises:
        ServiceError: the topic does not show up in the broker's metadata.
    """
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    kwargs = _client_kwargs(bootstrap, client_kwargs)
    tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic, kwargs)]
    options = {"group_id": group_id, "enable_auto_commit": False}
    async with _started_consumer(kwargs, **options) as consumer:
        consumer.assign(tps)
        committed = [await consumer.committed(tp) for tp in tps]
        if any(offset is not None for offset in committed):
            return False
        ends = await consumer.end_offsets(tps)
        try:
            await consumer.commit({tp: ends[tp] for tp in tps})
        except KafkaError as err:  # the group has members already: they own its offsets
            logger.info("group %s left as it is (%r)", group_id, err)
            return False
        logger.info("group %s starts on %s at the log end %s", group_id, topic, ends)
        return True


async def topic_record_count(
    bootstrap: str, topic: str, *, client_kwargs: Mapping[str, object] | None = None
) -> int:
    """Records a topic holds now (end minus beginning offsets, over its partitions).

    The dead-letter topic's count read at start-up, so `dlq` survives restarts.
    """
    from aiokafka import TopicPartition

    kwargs = _client_kwargs(bootstrap, client_kwargs)
    async with _started_admin(kwargs) as admin, _started_consumer(kwargs) as consumer:
        tps = [TopicPartition(topic, p) for p in await _partitions(admin, topic)]
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        return sum(max(ends[tp] - begins[tp], 0) for tp in tps)
