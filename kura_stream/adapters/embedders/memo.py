"""An embedder wrapper that remembers recent vectors, so one text is embedded once per stream.

The offline summariser embeds a conversation's request to pick its task; the pipeline then
embeds the summary text, which is that same request. The memo answers the second call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import Embedder


class MemoEmbedder:
    """Implements Embedder over another one, with an LRU memo of the last `size` texts."""

    def __init__(self, inner: Embedder, *, size: int = 8192) -> None:
        """Wrap inner; keep at most size vectors."""
        self._inner = inner
        self._size = size
        self._memo: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        # The summariser, the namers and a recompute call embed from different threads.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The inner embedder's name: the vectors are its vectors."""
        return self._inner.name

    @property
    def dim(self) -> int:
        """The inner embedder's dimension."""
        return self._inner.dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors of texts; only texts not remembered reach the inner embedder (one call)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        found: dict[str, npt.NDArray[np.float32]] = {}
        if missing:
            found = dict(zip(missing, self._inner.embed(missing), strict=True))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for i, text in enumerate(texts):
                vector = found.get(text)
                if vector is None:
                    vector = self._memo.get(text)
                if vector is None:  # evicted by another thread since the first look
                    vector = self._inner.embed([text])[0]
                out[i] = vector
                self._memo[text] = vector
                self._memo.move_to_end(text)
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return out
