"""An embedder wrapper that remembers recent vectors, so one text is embedded once per stream.

The offline summariser embeds a conversation's request to pick its task; the pipeline then
embeds the summary text, which is that same request. The memo answers the second call.
"""

from __future__ import annotations

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
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vector in zip(missing, self._inner.embed(missing), strict=True):
                self._memo[text] = vector
                if len(self._memo) > self._size:
                    self._memo.popitem(last=False)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = self._memo.get(text)
            if vector is None:  # evicted within this very call (more texts than the memo)
                vector = self._inner.embed([text])[0]
            else:
                self._memo.move_to_end(text)
            out[i] = vector
        return out
