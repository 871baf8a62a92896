"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, scripted per test."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    Attributes:
        kind: "tool" (a tool call whose arguments are `payload`), "content" (plain assistant
            text), "error" (HTTP `status` with an OpenAI-style error body), "garbage" (HTTP
            200 whose body is not JSON).
        payload: Tool-call arguments (a dict is JSON-encoded; a str is sent as it is, so
            invalid JSON can be scripted) or the content text.
        status: HTTP status for "error".
        delay_s: Sleep this long before answering (longer than the client's timeout to
            script a timeout).
        finish_reason: The choice's finish_reason ("length" scripts a truncated output).
    """

    kind: str
    payload: Any = None
    status: int = 200
    delay_s: float = 0.0
    finish_reason: str | None = None


def tool(arguments: dict[str, Any] | str, *, delay_s: float = 0.0) -> Reply:
    """A tool-call reply (instructor's Mode.TOOLS); the function name is the one requested."""
    return Reply("tool", arguments, delay_s=delay_s)


def content(text: str, *, delay_s: float = 0.0) -> Reply:
    """A plain-content reply (Mode.MD_JSON, or no response model)."""
    return Reply("content", text, delay_s=delay_s)


def error(status: int = 500, message: str = "scripted failure") -> Reply:
    """An HTTP error with an OpenAI-style error body."""
    return Reply("error", message, status=status)


def timeout(delay_s: float = 5.0) -> Reply:
    """Hang for delay_s before answering with an error: set the client's timeout below it."""
    return Reply("error", "too late", status=504, delay_s=delay_s)


def garbage() -> Reply:
    """HTTP 200 whose body is not JSON."""
    return Reply("garbage", "<html>not json")


@dataclass
class RecordedRequest:
    """One request the server received.

    Attributes:
        path: The URL path.
        body: The parsed JSON body (empty when it was not JSON).
        raw_size: Size of the raw body in bytes.
    """

    path: str
    body: dict[str, Any]
    raw_size: int

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent."""
        msgs: list[dict[str, Any]] = self.body.get("messages", [])
        return msgs

    @property
    def prompt_text(self) -> str:
        """All message contents joined: what the model was asked."""
        parts = []
        for m in self.messages:
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts.extend(p.get("text", "") for p in c if isinstance(p, dict))
        return "\n".join(parts)

    @property
    def tool_name(self) -> str | None:
        """The function the request asks the model to call (Mode.TOOLS), if any."""
        choice = self.body.get("tool_choice")
        if isinstance(choice, dict):
            name: str | None = choice.get("function", {}).get("name")
            return name
        tools = self.body.get("tools") or []
        return tools[0]["function"]["name"] if tools else None


Responder = Callable[[RecordedRequest], Reply]


@dataclass
class FakeOpenAIServer:
    """A real HTTP server in a thread implementing POST /v1/chat/completions.

    Replies come from the queue (`script`) first, then from `responder` (a function of the
    request); with neither, the server answers 500. Every request is recorded, and the
    largest number of requests in flight at once is tracked.
    """

    responder: Responder | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    max_in_flight: int = 0
    _queue: deque[Reply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order before the responder is used."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded requests to the chat-completions endpoint."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return error(500, "no scripted reply")

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def completion(request: RecordedRequest, reply: Reply) -> dict[str, Any]:
    """The chat.completion body for a tool or content reply."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if reply.kind == "tool":
        args = reply.payload if isinstance(reply.payload, str) else json.dumps(reply.payload)
        message["tool_calls"] = [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": request.tool_name or "tool", "arguments": args},
            }
        ]
        finish = reply.finish_reason or "tool_calls"
    else:
        message["content"] = str(reply.payload)
        finish = reply.finish_reason or "stop"
    prompt_tokens = max(1, len(request.prompt_text) // 4)
    return {
        "id": f"chatcmpl-{len(request.body)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 10, "total_tokens": 10},
    }


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("fake openai: " + format, *args)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a scripted timeout)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            request = RecordedRequest(self.path, body if isinstance(body, dict) else {}, len(raw))
            server._enter()
            try:
                reply = server._next_reply(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.kind == "error":
                    err = {"error": {"message": reply.payload, "type": "server_error"}}
                    self._send(reply.status, json.dumps(err).encode())
                elif reply.kind == "garbage":
                    self._send(200, str(reply.payload).encode())
                else:
                    self._send(200, json.dumps(completion(request, reply)).encode())
            finally:
                server._leave()

    return Handler


@contextmanager
def running(responder: Responder | None = None) -> Iterator[FakeOpenAIServer]:
    """A started FakeOpenAIServer, stopped on exit."""
    server = FakeOpenAIServer(responder=responder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
