"""An embedder that runs the configured embedder in a worker process.

In `serve` the event loop (parsing, assigning, publishing) and the embedding share one
interpreter. onnxruntime releases the GIL while it computes, but each return into Python
(tokenising, padding, pooling) waits for a loop that holds the GIL through long C calls (store
upserts, batch validation): MiniLM ran 30% slower beside a busy loop. In a process of its own
it keeps its speed; the hand-over costs a pickle of the texts and of the vectors.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import numpy.typing as npt

from kura_stream.adapters.embedders.common import EmbedderError
from kura_stream.protocols import Embedder
from kura_stream.settings import Settings

logger = logging.getLogger(__name__)

_embedder: Embedder | None = None
"""The worker process's embedder, loaded once by _load."""


PARENT_CHECK_S = 1.0


def _exit_with_parent(parent: int) -> None:
    # A service killed with SIGKILL cannot stop its worker: the worker notices and goes too.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _load(settings: Settings, parent: int) -> None:
    global _embedder
    from kura_stream.adapters.blas import limit_blas_threads
    from kura_stream.adapters.embedders.factory import make_embedder

    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    limit_blas_threads()
    _embedder = make_embedder(settings)


def _loaded() -> Embedder:
    if _embedder is None:
        raise EmbedderError("the embedding worker has no embedder loaded")
    return _embedder


def _describe() -> tuple[str, int]:
    embedder = _loaded()
    return embedder.name, embedder.dim


def _embed(texts: list[str]) -> npt.NDArray[np.float32]:
    return np.asarray(_loaded().embed(texts), dtype=np.float32)


class ProcessEmbedder:
    """Implements Embedder by calling the embedder that settings name in one worker process.

    Calls from several threads queue for the one worker. If the worker dies (killed, out of
    memory) the call raises EmbedderError and the next call starts a new worker.
    """

    def __init__(self, settings: Settings) -> None:
        """Start the worker and load the model there (raises what loading raises)."""
        self._settings = settings
        self._pool = self._start()
        self._name, self._dim = self._pool.submit(_describe).result()
        logger.info("embedding in a worker process: %s", self._name)

    def _start(self) -> ProcessPoolExecutor:
        # spawn: the service has threads running, which a forked child must not inherit.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(self._settings, os.getpid()),
        )

    @property
    def name(self) -> str:
        """The worker embedder's name: the vectors are its vectors."""
        return self._name

    @property
    def dim(self) -> int:
        """The worker embedder's dimension."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors of texts, computed in the worker (see the Embedder protocol).

        Raises:
            EmbedderError: the worker died during the call; a new one serves the next call.
        """
        if not texts:
            return np.empty((0, self._dim), dtype=np.float32)
        try:
            return self._pool.submit(_embed, list(texts)).result()
        except BrokenProcessPool as err:
            logger.error("the embedding worker died; starting a new one")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            raise EmbedderError("the embedding worker process died during a call") from err

    def close(self) -> None:
        """Stop the worker (waits for a call in progress)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def worker_pid(self) -> int:
        """The worker's process id (asked of the worker itself)."""
        return int(self._pool.submit(os.getpid).result())
