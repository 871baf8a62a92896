"""Pytest plugin: the local embedding models, set up as `kura-stream models fetch` does."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from kura_stream.adapters import model_files
from kura_stream.adapters.embedders import MiniLMEmbedder, StaticEmbedder
from kura_stream.adapters.embedders.common import minilm_dir, static_dir
from kura_stream.adapters.embedders.process import ProcessEmbedder
from kura_stream.settings import EmbedderSettings, Settings

logger = logging.getLogger(__name__)

SMALL_BATCH = 8
"""MiniLM's batch size under test: a few dozen texts cross several batch boundaries."""


@pytest.fixture(scope="session")
def static_models() -> None:
    """Make sure the MiniLM export and the distilled static model are on disk."""
    for _ in model_files.ensure_models(Settings().embedder.models_dir):
        pass


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real models folder, set up by the same code as `kura-stream models fetch`."""
    folder = Settings().embedder.models_dir
    for step in model_files.ensure_models(folder):
        logger.info(
            "models: %s %s in %.1fs (%s)", step.name, step.action, step.seconds, step.detail
        )
    return folder


@pytest.fixture(scope="session")
def minilm(models_dir: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder.from_dir(minilm_dir(models_dir), batch_size=SMALL_BATCH)


@pytest.fixture(scope="session")
def static(models_dir: Path) -> StaticEmbedder:
    return StaticEmbedder(static_dir(models_dir))


@pytest.fixture(scope="session")
def minilm_in_worker(models_dir: Path) -> Iterator[ProcessEmbedder]:
    settings = Settings(
        embedder=EmbedderSettings(kind="minilm", models_dir=models_dir, batch_size=SMALL_BATCH)
    )
    worker = ProcessEmbedder(settings)
    yield worker
    worker.close()
