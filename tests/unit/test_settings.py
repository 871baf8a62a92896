"""Settings: KURA_* environment variables, nested sections, secrets kept out of logs."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from kura_stream.settings import Settings


def test_nested_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURA_KAFKA_BOOTSTRAP", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("KURA_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KURA_STORE_QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("KURA_LLM_CONCURRENCY", "7")
    monkeypatch.setenv("KURA_CLUSTERING_JOIN_SIMILARITY", "0.7")
    settings = Settings()
    assert settings.kafka.bootstrap == "broker-1:9093,broker-2:9093"
    assert settings.kafka.sasl_username == "svc"
    assert settings.store.qdrant_url == "http://qdrant:6333"
    assert settings.llm.concurrency == 7
    assert settings.clustering.join_similarity == 0.7


def test_secrets_never_in_repr_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KURA_KAFKA_SASL_PASSWORD", "kafka-pw-123")
    monkeypatch.setenv("KURA_LLM_API_KEY", "sk-llm-456")
    monkeypatch.setenv("KURA_STORE_QDRANT_API_KEY", "qdrant-789")
    settings = Settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    for text in (repr(settings), str(settings), caplog.text, settings.model_dump_json()):
        for secret in ("kafka-pw-123", "sk-llm-456", "qdrant-789"):
            assert secret not in text
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "kafka-pw-123"
    assert settings.llm.api_key.get_secret_value() == "sk-llm-456"


def test_invalid_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURA_KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ValidationError, match="security_protocol"):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.kafka.bootstrap = "elsewhere:9092"  # type: ignore[misc]


def test_thresholds_are_learnt_unless_settings_fix_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from kura_stream.bootstrap import assign_params

    learnt = assign_params(Settings())
    assert learnt.join_similarity is None
    assert learnt.birth_similarity is None
    assert learnt.join_z == Settings().clustering.join_z
    monkeypatch.setenv("KURA_CLUSTERING_BIRTH_SIMILARITY", "0.7")
    monkeypatch.setenv("KURA_CLUSTERING_BIRTH_QUANTILE", "0.5")
    fixed = assign_params(Settings())
    assert fixed.birth_similarity == 0.7
    assert fixed.join_similarity is None
    assert fixed.birth_quantile == 0.5
