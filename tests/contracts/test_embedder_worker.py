"""The embedding worker process: its vectors, recovery from a dead worker, when serve uses it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from kura_stream.adapters.embedders import EmbedderError, MiniLMEmbedder, StaticEmbedder
from kura_stream.adapters.embedders.process import ProcessEmbedder
from kura_stream.settings import EmbedderSettings, Settings


def test_worker_process_gives_the_in_process_vectors(
    minilm_in_worker: ProcessEmbedder, minilm: MiniLMEmbedder
) -> None:
    texts = ["refund", "my router drops the connection every night " * 3, "word " * 400]
    assert minilm_in_worker.name == minilm.name
    np.testing.assert_allclose(minilm_in_worker.embed(texts), minilm.embed(texts), atol=1e-6)


def test_a_killed_worker_fails_that_call_and_a_new_one_serves_the_next(
    models_dir: Path, static: StaticEmbedder
) -> None:
    worker = ProcessEmbedder(
        Settings(embedder=EmbedderSettings(kind="static", models_dir=models_dir))
    )
    try:
        first = worker.worker_pid()
        os.kill(first, signal.SIGKILL)
        with pytest.raises(EmbedderError, match="worker process died"):
            worker.embed(["a refund for a broken router"])
        again = worker.embed(["a refund for a broken router"])
        assert worker.worker_pid() != first
        np.testing.assert_allclose(again, static.embed(["a refund for a broken router"]))
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("kind", "setting", "service", "expected"),
    [
        ("minilm", None, True, ProcessEmbedder),
        ("minilm", None, False, MiniLMEmbedder),
        ("static", None, True, StaticEmbedder),
        ("static", True, False, ProcessEmbedder),
        ("minilm", False, True, MiniLMEmbedder),
    ],
)
def test_serve_embeds_minilm_in_a_worker_unless_told_otherwise(
    models_dir: Path, kind: str, setting: bool | None, service: bool, expected: type
) -> None:
    from kura_stream.bootstrap import build_embedder

    config = EmbedderSettings(kind=kind, models_dir=models_dir, worker_process=setting)
    built = build_embedder(Settings(embedder=config), service=service)
    try:
        assert type(built) is expected
    finally:
        close = getattr(built, "close", None)
        if close is not None:
            close()
