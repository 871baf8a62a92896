"""A local OpenAI-compatible POST /v1/embeddings server backed by any Embedder (tests only)."""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import numpy as np

from kura_stream.protocols import Embedder

logger = logging.getLogger(__name__)


@dataclass
class Faults:
    """What the server does wrong on purpose; tests set these between requests.

    Attributes:
        status: Answer every request with this HTTP status (and an OpenAI error body).
        truncate_dims: Cut every vector to this many dims.
        drop_last: Leave the last embedding out of each answer.
    """

    status: int | None = None
    truncate_dims: int | None = None
    drop_last: bool = False


@dataclass
class Stats:
    """What the server has seen."""

    requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class OpenAIEmbeddingsServer:
    """ThreadingHTTPServer on 127.0.0.1 (a free port) in a daemon thread; a context manager.

    Speaks the wire format of OpenAI's embeddings API: input as a string or a list of strings,
    encoding_format float or base64 (float32 little-endian), optional dimensions (the leading
    dims, renormalised, as text-embedding-3 does), Bearer authentication when api_key is set.
    """

    def __init__(self, embedder: Embedder, *, api_key: str | None = None) -> None:
        self.embedder = embedder
        self.api_key = api_key
        self.faults = Faults()
        self.stats = Stats()
        self._lock = threading.Lock()  # one embed at a time, as a real single-model server
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> OpenAIEmbeddingsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIEmbeddingsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The (status, JSON body) for one POST /v1/embeddings."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_api_key")
        if self.faults.status is not None:
            return self.faults.status, _error("injected failure", "server_error")
        try:
            request = json.loads(body)
        except ValueError:
            return 400, _error("body is not JSON")
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return 400, _error("input must be a string or a list of strings")
        if not texts:
            return 400, _error("input must not be empty")
        encoding = request.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return 400, _error(f"unknown encoding_format {encoding!r}")
        with self._lock:
            vectors = self.embedder.embed(texts)
            self.stats.requests += 1
            self.stats.batch_sizes.append(len(texts))
            self.stats.models.append(str(request.get("model")))
        dims = request.get("dimensions")
        if isinstance(dims, int) and 0 < dims < vectors.shape[1]:
            vectors = vectors[:, :dims]
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        if self.faults.truncate_dims is not None:
            vectors = vectors[:, : self.faults.truncate_dims]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": (
                    base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                    if encoding == "base64"
                    else [float(x) for x in v]
                ),
            }
            for i, v in enumerate(vectors)
        ]
        if self.faults.drop_last:
            data = data[:-1]
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return 200, {"object": "list", "data": data, "model": request.get("model"), "usage": usage}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/embeddings":
                    status, payload = 404, _error(f"no route {self.path}")
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, payload = server.answer(headers, body)
                raw = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("embeddings server: " + format, *args)

        return Handler
