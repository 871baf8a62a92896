"""Unit tests of the local broker's configuration and of the aiokafka connection kwargs."""

from __future__ import annotations

import asyncio
import base64
import functools
import gc
import json
import logging
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from kura_stream.adapters import kafka_client, kafka_install, kafka_server
from kura_stream.adapters.kafka_client import (
    RETRY_BACKOFF_MS,
    aiokafka_kwargs,
    consumer_lag,
    ensure_topics,
    parse_bootstrap,
    start_group_at_end,
    topic_partitions,
)
from kura_stream.adapters.kafka_install import is_installed
from kura_stream.adapters.kafka_server import (
    BrokerConfig,
    broker_command,
    format_storage,
    server_properties,
)
from kura_stream.settings import KafkaSettings, Settings

PASSWORD = "s3cr3t-Pa55word-xyz"


def _props(config: BrokerConfig) -> dict[str, str]:
    lines = server_properties(config).splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_server_properties_describe_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    config = BrokerConfig(port=19092, controller_port=19093, data_dir=tmp_path, num_partitions=3)
    props = _props(config)

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "kraft")
    assert props["num.partitions"] == "3"
    assert props["auto.create.topics.enable"] == "true"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_every_listener_binds_loopback_only(tmp_path: Path) -> None:
    props = _props(BrokerConfig(data_dir=tmp_path))
    for key in ("listeners", "advertised.listeners"):
        for listener in props[key].split(","):
            assert listener.split("://", 1)[1].rsplit(":", 1)[0] == "127.0.0.1"
    assert "0.0.0.0" not in server_properties(BrokerConfig(data_dir=tmp_path))


def test_config_from_settings_takes_the_port_from_bootstrap(tmp_path: Path) -> None:
    settings = Settings(
        kafka=KafkaSettings(bootstrap="localhost:29092,other:1"),
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
    )
    config = BrokerConfig.from_settings(settings)
    assert (config.port, config.controller_port) == (29092, 29093)
    assert config.bootstrap == "127.0.0.1:29092"
    assert config.data_dir == tmp_path / "data" / "kafka"
    assert config.libs_dir == tmp_path / "cache" / "kafka" / config.version / "libs"

    explicit = BrokerConfig.from_settings(
        settings, port=39092, controller_port=40000, data_dir=tmp_path / "x"
    )
    assert (explicit.port, explicit.controller_port, explicit.data_dir) == (
        39092,
        40000,
        tmp_path / "x",
    )


def test_default_config_uses_9092_and_the_git_ignored_folders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KURA_KAFKA_BOOTSTRAP", raising=False)
    settings = Settings()
    config = BrokerConfig.from_settings(settings)
    assert config.bootstrap == "127.0.0.1:9092"
    assert config.data_dir == settings.data_dir / "kafka"
    assert config.install_dir == settings.cache_dir / "kafka" / kafka_server.KAFKA_VERSION


def test_a_remote_bootstrap_is_not_started_locally() -> None:
    settings = Settings(kafka=KafkaSettings(bootstrap="kafka.example.com:9092"))
    with pytest.raises(ValueError, match="not local"):
        BrokerConfig.from_settings(settings)
    assert BrokerConfig.from_settings(settings, port=9999).port == 9999


@pytest.mark.parametrize("bad", ["", "localhost", "host:", ":9092", "host:port"])
def test_parse_bootstrap_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_bootstrap(bad)


def test_parse_bootstrap_takes_the_first_entry() -> None:
    assert parse_bootstrap(" 10.0.0.1:9093 , b:1") == ("10.0.0.1", 9093)


def test_broker_command_runs_kafka_with_a_modest_heap(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    command = broker_command(config)
    assert Path(command[0]).name == "java"
    assert "-Xmx512m" in command
    assert "-Xms256m" in command
    assert command[command.index("-cp") + 1] == f"{config.libs_dir}/*"
    assert command[-2:] == ["kafka.Kafka", str(config.properties_file)]


def test_install_marker_must_match_pom_and_jars(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    config = BrokerConfig(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    assert not is_installed(config, pom=pom)

    config.libs_dir.mkdir(parents=True)
    (config.libs_dir / "kafka_2.13-x.jar").write_bytes(b"jar")
    marker = config.install_dir / "installed.json"
    digest = kafka_install._pom_digest(pom)
    marker.write_text(json.dumps({"pom_sha256": digest, "jars": ["kafka_2.13-x.jar"]}))
    assert is_installed(config, pom=pom)

    pom.write_text("<project><!-- changed --></project>")  # a new pom means new jars
    assert not is_installed(config, pom=pom)

    marker.write_text(json.dumps({"pom_sha256": kafka_install._pom_digest(pom), "jars": ["a.jar"]}))
    assert not is_installed(config, pom=pom)  # a jar is missing


def test_format_storage_keeps_an_existing_cluster(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path)
    config.log_dirs.mkdir(parents=True)
    (config.log_dirs / "meta.properties").write_text(
        "node.id=1\ncluster.id=AbCdEfGhIjKlMnOpQrStUv\n"
    )
    assert format_storage(config) == "AbCdEfGhIjKlMnOpQrStUv"  # no java run, nothing rewritten


def test_new_cluster_ids_are_kafka_uuids() -> None:
    ids = {kafka_server._new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")  # the storage tool would read it as an option
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --- aiokafka connection kwargs ----------------------------------------------------------


def test_plaintext_kwargs_carry_no_credentials() -> None:
    kwargs = aiokafka_kwargs(KafkaSettings(bootstrap="a:1,b:2"))
    assert kwargs == {
        "bootstrap_servers": "a:1,b:2",
        "security_protocol": "PLAINTEXT",
        "retry_backoff_ms": RETRY_BACKOFF_MS,
    }


def test_every_client_retries_with_our_backoff_not_aiokafkas_100ms() -> None:
    from kura_stream.adapters.kafka_stream import make_broker

    assert RETRY_BACKOFF_MS >= 1000
    broker = make_broker(KafkaSettings(bootstrap="127.0.0.1:1"))
    # FastStream builds its producer and admin client from these, its consumers from builder.
    assert broker._connection_kwargs["retry_backoff_ms"] == RETRY_BACKOFF_MS
    builder = broker.config.broker_config.builder
    assert isinstance(builder, functools.partial)
    assert builder.keywords["retry_backoff_ms"] == RETRY_BACKOFF_MS


def test_sasl_password_passes_through_but_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="kura",
        sasl_password=SecretStr(PASSWORD),
    )
    with caplog.at_level(logging.DEBUG):
        kwargs = aiokafka_kwargs(settings)
        logging.getLogger("test").info("connecting with %s / %r", kwargs, kwargs)

    assert kwargs["sasl_plain_password"] == PASSWORD
    assert kwargs["sasl_plain_username"] == "kura"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert "ssl_context" not in kwargs
    for text in (repr(kwargs), str(kwargs), f"{kwargs}", repr(settings), str(settings)):
        assert PASSWORD not in text
    assert "sasl_plain_password" in repr(kwargs)  # masked, not dropped
    assert caplog.records  # the kwargs were logged ...
    assert PASSWORD not in caplog.text  # ... without the password


def test_sasl_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KURA_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KURA_KAFKA_SASL_PASSWORD", PASSWORD)
    settings = Settings()
    assert PASSWORD not in repr(settings)

    kwargs = aiokafka_kwargs(settings.kafka)
    assert kwargs["sasl_plain_password"] == PASSWORD
    assert kwargs["sasl_mechanism"] == "PLAIN"  # the default when none is set
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert PASSWORD not in repr(kwargs)


async def test_aiokafka_clients_accept_the_kwargs() -> None:
    settings = KafkaSettings(
        bootstrap="127.0.0.1:1",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="kura",
        sasl_password=SecretStr(PASSWORD),
    )
    kwargs = aiokafka_kwargs(settings)
    # Constructing validates the combination (e.g. SSL without a context raises); nothing
    # connects until start().
    producer = AIOKafkaProducer(**kwargs)
    consumer = AIOKafkaConsumer("t", group_id="g", **kwargs)
    admin = AIOKafkaAdminClient(**kwargs)
    assert producer.client._sasl_plain_password == PASSWORD
    assert producer.client._security_protocol == "SASL_SSL"
    await consumer.stop()
    await admin.close()
    await producer.stop()


# --- no client outlives a failed call ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


async def test_helpers_close_every_client_when_the_broker_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # aiokafka reports a consumer dropped unclosed twice: a ResourceWarning and the loop's
    # exception handler ("Unclosed AIOKafkaConsumer"); watch both. An admin client says
    # nothing, so every one made is kept and checked.
    admins: list[AIOKafkaAdminClient] = []

    class _Admin(AIOKafkaAdminClient):  # type: ignore[misc]
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            admins.append(self)

    monkeypatch.setattr(kafka_client, "AIOKafkaAdminClient", _Admin)
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(str(context["message"])))
    bootstrap = f"127.0.0.1:{_closed_port()}"
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: consumer_lag(bootstrap, "g", "t"),
        lambda: ensure_topics(bootstrap, ["t"], 1),
        lambda: topic_partitions(bootstrap, "t"),
        lambda: start_group_at_end(bootstrap, "g", "t"),
    ]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):  # the lag monitor calls again and again while the broker is down
                for call in calls:
                    with pytest.raises(KafkaConnectionError):
                        await call()
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert not [r for r in reported if "Unclosed" in r], reported
    assert not [w for w in caught if "Unclosed" in str(w.message)], caught
    assert len(admins) == 12  # each of the four helpers makes one; 3 calls each
    assert all(admin._closed for admin in admins)
