"""The local Apache Kafka broker (one KRaft node on 127.0.0.1): install, configure, run, check."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from kura_stream.adapters.kafka_client import HOST, describe_cluster, parse_bootstrap, port_open
from kura_stream.adapters.kafka_install import install
from kura_stream.adapters.processes import ManagedProcess, ServiceError
from kura_stream.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
"""The broker version; see scripts/kafka/pom.xml for why this one."""
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
_T = TypeVar("_T")

_LOG4J2 = """\
# Written by kura-stream. WARN and up, plus the line that says the broker started.
status = warn
# Kafka shuts down in its own hook and logs while doing so; log4j must not close first.
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
"""


@dataclass(frozen=True)
class BrokerConfig:
    """Everything that decides how the local broker is installed and run.

    Attributes:
        port: PLAINTEXT port on 127.0.0.1 (clients' bootstrap).
        controller_port: KRaft controller port on 127.0.0.1.
        data_dir: Folder of this broker: PID file, output log, server.properties, and its
            log.dirs under `kraft/`.
        cache_dir: Folder of downloads; the jars go in `<cache_dir>/kafka/<version>/libs`.
        version: Kafka version to fetch and run.
        num_partitions: Partitions of topics the broker auto-creates.
        heap_min_mb: -Xms of the JVM.
        heap_max_mb: -Xmx of the JVM.
    """

    port: int = 9092
    controller_port: int = 9093
    data_dir: Path = REPO_ROOT / ".data" / "kafka"
    cache_dir: Path = REPO_ROOT / ".cache"
    version: str = KAFKA_VERSION
    num_partitions: int = 1
    heap_min_mb: int = 256
    heap_max_mb: int = 512

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | None = None,
    ) -> BrokerConfig:
        """The config for Settings, with the port taken from the bootstrap setting by default.

        Raises:
            ValueError: no port is given and the bootstrap setting names a remote host.
        """
        if port is None:
            host, port = parse_bootstrap(settings.kafka.bootstrap)
            if host not in _LOCAL_HOSTS:
                raise ValueError(
                    f"KURA_KAFKA_BOOTSTRAP={settings.kafka.bootstrap} is not local; "
                    "the local broker binds 127.0.0.1 only (pass an explicit port)"
                )
        return cls(
            port=port,
            controller_port=controller_port if controller_port is not None else port + 1,
            data_dir=data_dir if data_dir is not None else settings.data_dir / "kafka",
            cache_dir=settings.cache_dir,
        )

    @property
    def bootstrap(self) -> str:
        """host:port that clients bootstrap from."""
        return f"{HOST}:{self.port}"

    @property
    def install_dir(self) -> Path:
        """Folder of this version's jars and install marker."""
        return self.cache_dir / "kafka" / self.version

    @property
    def libs_dir(self) -> Path:
        """Folder of the broker's jars."""
        return self.install_dir / "libs"

    @property
    def log_dirs(self) -> Path:
        """The broker's data (log.dirs): topic partitions and the KRaft metadata log."""
        return self.data_dir / "kraft"

    @property
    def properties_file(self) -> Path:
        """Where server.properties is written."""
        return self.data_dir / "server.properties"


def server_properties(config: BrokerConfig) -> str:
    """The server.properties of one KRaft node acting as broker and controller on 127.0.0.1."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static voter set read from this file on every start, so a changed controller port
        # never disagrees with a voter endpoint frozen into the formatted log dir.
        "controller.quorum.voters": f"1@{HOST}:{config.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{config.port},CONTROLLER://{HOST}:{config.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{config.port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(config.log_dirs),
        "num.partitions": str(config.num_partitions),
        "auto.create.topics.enable": "true",
        # One node: every internal topic has one replica, and consumer groups start at once.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = ["# Written by kura-stream (kura_stream/adapters/kafka_server.py); edits are lost."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java 17+ (java) is needed to run the Kafka broker; install it first")
    return java


def _jvm_args(config: BrokerConfig) -> list[str]:
    return [
        f"-Xms{config.heap_min_mb}m",
        f"-Xmx{config.heap_max_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config.data_dir / 'log4j2.properties'}",
        "-cp",
        f"{config.libs_dir}/*",  # expanded by java itself, no shell involved
    ]


def broker_command(config: BrokerConfig) -> list[str]:
    """The java command line that runs the broker."""
    return [_java(), *_jvm_args(config), "kafka.Kafka", str(config.properties_file)]


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. Like Kafka's
    # own Uuid.randomUuid(), never one starting with "-": the tool would take it for an option.
    while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())[0] == "-":
        pass
    return text


def read_cluster_id(config: BrokerConfig) -> str | None:
    """The cluster id the log dir was formatted with, or None if it is not formatted."""
    try:
        text = (config.log_dirs / "meta.properties").read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("cluster.id="):
            return line.split("=", 1)[1].strip()
    return None


def write_config(config: BrokerConfig) -> None:
    """Write server.properties and the log4j 2 config into the broker's data dir."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.properties_file.write_text(server_properties(config))
    (config.data_dir / "log4j2.properties").write_text(_LOG4J2)


def format_storage(config: BrokerConfig) -> str:
    """Format log.dirs with the storage tool once; later calls keep the existing cluster.

    Returns:
        The cluster id.

    Raises:
        ServiceError: the storage tool failed.
    """
    if (existing := read_cluster_id(config)) is not None:
        return existing
    cluster_id = _new_cluster_id()
    command = [
        _java(), *_jvm_args(config), "kafka.tools.StorageTool", "format",
        f"--cluster-id={cluster_id}", f"--config={config.properties_file}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"formatting {config.log_dirs} failed:\n{result.stdout}{result.stderr}")
    logger.info("formatted %s as cluster %s", config.log_dirs, cluster_id)
    return cluster_id


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""

    async def main() -> _T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@dataclass(frozen=True)
class BrokerStatus:
    """What `broker status` reports.

    Attributes:
        running: The broker process is alive.
        ready: It answers a metadata request as the cluster its data dir holds.
        pid: Its PID, when running.
        bootstrap: host:port clients connect to.
        data_dir: Its data folder.
        version: Kafka version configured.
    """

    running: bool
    ready: bool
    pid: int | None
    bootstrap: str
    data_dir: str
    version: str

    def to_dict(self) -> dict[str, object]:
        """The status as a JSON-ready dict."""
        return asdict(self)


class LocalKafkaServer:
    """The local broker of one BrokerConfig, known by the PID file in its data dir."""

    def __init__(self, config: BrokerConfig) -> None:
        """Wrap a config; nothing starts until start()."""
        self.config = config
        self.process = ManagedProcess("kafka", config.data_dir)

    @property
    def bootstrap(self) -> str:
        """host:port of the broker: the running one's (from its server.properties), else ours.

        A broker started with another port in the same data dir is still found by `status`.
        """
        if self.process.pid() is None:
            return self.config.bootstrap
        try:
            text = self.config.properties_file.read_text()
        except FileNotFoundError:
            return self.config.bootstrap
        for line in text.splitlines():
            if line.startswith("advertised.listeners=PLAINTEXT://"):
                return line.split("://", 1)[1].split(",")[0].strip()
        return self.config.bootstrap

    def is_ready(self, *, timeout_s: float = 5.0) -> bool:
        """True if the broker answers a metadata request as the cluster in our data dir.

        Comparing the cluster id catches another broker already holding our port.
        """
        bootstrap = self.bootstrap
        answer = _run_sync(lambda: describe_cluster(bootstrap, timeout_s=timeout_s))
        if answer is None:
            return False
        expected = read_cluster_id(self.config)
        return expected is not None and answer.get("cluster_id") == expected

    def status(self, *, check: bool = True) -> BrokerStatus:
        """Whether the broker runs and answers, its PID and address.

        Args:
            check: Send a metadata request to test that it answers (else ready=False).
        """
        pid = self.process.pid()
        return self._status(pid, ready=pid is not None and check and self.is_ready())

    def _status(self, pid: int | None, *, ready: bool) -> BrokerStatus:
        return BrokerStatus(
            running=pid is not None,
            ready=ready,
            pid=pid,
            bootstrap=self.bootstrap,
            data_dir=str(self.config.data_dir),
            version=self.config.version,
        )

    def start(self, *, timeout_s: float = 90.0) -> BrokerStatus:
        """Install if needed, format once, start the broker and wait until it answers.

        Starting a broker that already runs is harmless: it waits for that one to answer and
        reports it.

        Args:
            timeout_s: How long to wait for the broker to answer.

        Returns:
            The status of the running, answering broker.

        Raises:
            ServiceError: a port is taken by something else, or the broker did not come up
                (it is stopped again, so no half-started process is left).
        """
        if (pid := self.process.pid()) is not None:
            logger.info("Kafka already runs as PID %d on %s", pid, self.bootstrap)
            self.process.wait_ready(self.is_ready, timeout_s=timeout_s)
            return self._status(pid, ready=True)
        for port in (self.config.port, self.config.controller_port):
            if port_open(port):
                raise ServiceError(f"{HOST}:{port} is already in use (another broker?)")
        install(self.config)
        write_config(self.config)
        format_storage(self.config)
        pid = self.process.start(broker_command(self.config), cwd=self.config.data_dir)
        try:
            self.process.wait_ready(self.is_ready, timeout_s=timeout_s)
        except BaseException:
            self.process.stop()
            raise
        logger.info("Kafka %s ready on %s (PID %d)", self.config.version, self.bootstrap, pid)
        return self._status(pid, ready=True)

    def stop(self, *, timeout_s: float = 30.0) -> bool:
        """Stop the broker by its PID (SIGTERM, then SIGKILL after timeout_s).

        Returns:
            True if it ran and is gone now, False if it was not running.
        """
        pid = self.process.pid()
        stopped = self.process.stop(timeout_s=timeout_s)
        if pid is not None:
            # If we started it, reap it now: a zombie would still show in the process table.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if stopped:
            logger.info("Kafka on %s stopped", self.bootstrap)
        return stopped
