"""Stage timings: `with timed(timings, "stage"):` records the seconds the block took."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping


@contextlib.contextmanager
def timed(timings: MutableMapping[str, float], key: str) -> Iterator[None]:
    """Set `timings[key]` to the seconds the block took (left unset if the block raises).

    Args:
        timings: Where the seconds go, by stage.
        key: The stage's name.
    """
    started = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - started
