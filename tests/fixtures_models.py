"""Pytest plugin: the local embedding models, set up as `kura-stream models fetch` does."""

from __future__ import annotations

import pytest

from kura_stream.adapters import model_files
from kura_stream.settings import Settings


@pytest.fixture(scope="session")
def static_models() -> None:
    """Make sure the MiniLM export and the distilled static model are on disk."""
    for _ in model_files.ensure_models(Settings().embedder.models_dir):
        pass
