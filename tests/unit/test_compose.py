"""docker-compose.yml parses, and its kura-stream environment uses real setting names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from kura_stream.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _env_names() -> set[str]:
    """Every KURA_* variable name Settings reads: top-level fields and section fields."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names.update(f"KURA_{name}_{sub}".upper() for sub in section.model_fields)
        else:
            names.add(f"KURA_{name}".upper())
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"kafka", "qdrant", "kura-stream"} <= set(compose["services"])
    kafka_env = compose["services"]["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_service_env_matches_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str] = compose["services"]["kura-stream"]["environment"]
    known = _env_names()
    unknown = sorted(set(env) - known)
    assert not unknown, f"compose sets variables Settings does not read: {unknown}"
    for key, value in env.items():
        # ${VAR:-default} is compose interpolation: the service sees the default.
        if value.startswith("${") and ":-" in value:
            value = value.split(":-", 1)[1].rstrip("}")
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.store.qdrant_url == "http://qdrant:6333"
    assert settings.service.host == "0.0.0.0"
    qdrant_port = compose["services"]["qdrant"]["ports"][0].rsplit(":", 1)[-1]
    assert settings.store.qdrant_url.endswith(qdrant_port)


def test_env_names_cover_known_fields() -> None:
    names = _env_names()
    assert "KURA_KAFKA_BOOTSTRAP" in names
    assert "KURA_LLM_API_KEY" in names
    assert "KURA_STORE_QDRANT_URL" in names
