"""Pytest plugin: an OpenAI-compatible LLM endpoint for the session (KURA_LLM_BASE_URL or local)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from kura_stream.adapters.llm_server import LLMServerConfig, LocalLLMServer
from kura_stream.settings import LLMSettings, Settings


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLLMServer | None]:
    """The session's own server on the 0.5B model, or None when KURA_LLM_BASE_URL is set."""
    if os.environ.get("KURA_LLM_BASE_URL"):
        yield None
        return
    settings = Settings()
    llm = settings.llm.model_copy(update={"local_model": "qwen2.5-0.5b"})
    config = LLMServerConfig.from_settings(
        settings.model_copy(update={"llm": llm}),
        port=free_port(),
        run_dir=tmp_path_factory.mktemp("llm"),
    )
    server = LocalLLMServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llm_settings(llm_server: LocalLLMServer | None) -> LLMSettings:
    """LLM settings pointing at a live endpoint: KURA_LLM_* as set, or the session's server."""
    if llm_server is None:
        return Settings().llm
    return Settings().llm.model_copy(
        update={"base_url": llm_server.config.base_url, "model": llm_server.config.alias}
    )
