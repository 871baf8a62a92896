"""Fetching the local broker's jars from Maven Central into the cache, once per version and pom."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from kura_stream.adapters.file_lock import locked
from kura_stream.adapters.processes import ServiceError
from kura_stream.settings import REPO_ROOT

logger = logging.getLogger(__name__)

POM = REPO_ROOT / "scripts" / "kafka" / "pom.xml"
"""The pom whose dependencies are the broker's jars."""
_MARKER = "installed.json"


class InstallTarget(Protocol):
    """Where a Kafka version's jars go (kafka_server.BrokerConfig is one)."""

    @property
    def version(self) -> str:
        """The Kafka version."""
        ...

    @property
    def install_dir(self) -> Path:
        """Folder of this version's jars and install marker."""
        ...

    @property
    def libs_dir(self) -> Path:
        """Folder of the broker's jars."""
        ...


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_installed(config: InstallTarget, *, pom: Path = POM) -> bool:
    """True if this version's jars are complete and were fetched with the current pom."""
    try:
        marker = json.loads((config.install_dir / _MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return False
    jars = marker.get("jars", [])
    return (
        marker.get("pom_sha256") == _pom_digest(pom)
        and bool(jars)
        and all((config.libs_dir / jar).is_file() for jar in jars)
    )


def install(config: InstallTarget, *, pom: Path = POM) -> Path:
    """Fetch the broker's jars with Maven into the cache, unless already there.

    Returns:
        The folder of jars.

    Raises:
        ServiceError: Maven is missing or failed.
    """
    # Two processes starting brokers at once must not both write the same folder.
    with locked(config.install_dir):
        if is_installed(config, pom=pom):
            return config.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError("Maven (mvn) is needed to fetch the Kafka jars; install it first")
        staging = config.install_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("fetching Kafka %s jars from Maven Central into %s", config.version, staging)
        command = [
            mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
            f"-Dkafka.version={config.version}", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"mvn failed ({result.returncode}) fetching Kafka {config.version}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if not any(j.startswith(f"kafka_2.13-{config.version}") for j in jars):
            raise ServiceError(f"mvn succeeded but no kafka_2.13-{config.version} jar in {staging}")
        shutil.rmtree(config.libs_dir, ignore_errors=True)
        staging.rename(config.libs_dir)
        # The marker comes last: an interrupted install is never taken for a complete one.
        marker = {"version": config.version, "pom_sha256": _pom_digest(pom), "jars": jars}
        (config.install_dir / _MARKER).write_text(json.dumps(marker, indent=2))
        logger.info("installed %d jars for Kafka %s", len(jars), config.version)
        return config.libs_dir
