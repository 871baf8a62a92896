"""An OpenAI-compatible endpoint that answers any structured-output request after a fixed latency.

For bench_llm_path: POST /v1/chat/completions sleeps `--latency` seconds, then answers a
minimal valid instance of whatever schema was asked for (instructor's TOOLS mode: the tool's
JSON schema; JSON / MD_JSON modes: the schema instructor writes into the system message), or
HTTP 500 on a seeded `--fail-rate` share of calls. GET /stats counts requests by tool name and
the most in flight at once; POST /stats/reset starts the counts again. The body is built by
the test fake's `completion` (tests/fakes/openai_server.py), so both fakes answer alike.

    .venv/bin/python -m bench.fixed_latency_llm --latency 0.5 [--fail-rate 0.1] [--port 0]
It prints one JSON line {"port": N} once it listens. `FixedLatencyLLM` runs it as a subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from tests.fakes.openai_server import RecordedRequest, completion, content, tool

WORDS = ("cooking", "travel", "python", "music", "finance", "health", "history", "football")
"""String answers: one word per conversation (from a hash of its prompt), so a static
embedder sees a few distinct topics and the stream forms several clusters, not one."""


def instance(schema: dict[str, Any], defs: dict[str, Any], word: str) -> Any:
    """A minimal value valid against a JSON schema (the subset pydantic writes)."""
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, word)
    for key in ("allOf", "anyOf", "oneOf"):
        options = [s for s in schema.get(key, ()) if s.get("type") != "null"]
        if options:
            return instance(options[0], defs, word)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, defs, word) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 0)))
        count = min(count, int(schema.get("maxItems", count)))
        return [instance(schema.get("items", {}), defs, word) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema, word)


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if integer else 0.5))
    high = schema.get("maximum", schema.get("exclusiveMaximum", low + 2) - (1 if integer else 0.5))
    value = max(low, min(1, high))
    return int(value) if integer else float(value)


def _string(schema: dict[str, Any], word: str) -> str:
    if schema.get("format") == "date-time":
        return "1970-01-01T00:00:00Z"
    text = word
    while len(text) < int(schema.get("minLength", 0)):
        text += f" {word}"
    return text[: int(schema.get("maxLength", len(text)))]


def _schema_in_text(text: str) -> dict[str, Any] | None:
    """The JSON schema instructor's JSON / MD_JSON modes put into the system message."""
    at = text.find("json_schema:")
    start = text.find("{", max(at, 0))
    if start < 0:
        return None
    try:
        found, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def answer(request: RecordedRequest) -> dict[str, Any]:
    """The chat.completion body for one request: a valid instance of what it asked for."""
    prompt = request.prompt_text
    word = WORDS[int(hashlib.blake2b(prompt.encode(), digest_size=4).hexdigest(), 16) % len(WORDS)]
    tools = request.body.get("tools") or []
    if tools:
        schema = tools[0]["function"].get("parameters", {})
        return completion(request, tool(instance(schema, schema.get("$defs", {}), word)))
    schema = _schema_in_text(prompt)
    if schema is None:
        return completion(request, content(word))
    text = json.dumps(instance(schema, schema.get("$defs", {}), word))
    plain = (request.body.get("response_format") or {}).get("type") in (
        "json_object",
        "json_schema",
    )
    return completion(request, content(text if plain else f"```json\n{text}\n```"))


@dataclass
class Stats:
    """What the server has seen since the last reset."""

    requests: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    busy_s: float = 0.0
    first_at: float | None = None
    last_at: float = 0.0

    def enter(self, name: str) -> None:
        """A request arrived (counted under its tool name and under "all")."""
        for key in (name, "all"):
            self.requests[key] += 1
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
        if self.first_at is None:
            self.first_at = time.monotonic()

    def leave(self, name: str, started: float) -> None:
        """A request that arrived at `started` (monotonic) was answered."""
        for key in (name, "all"):
            self.in_flight[key] -= 1
        self.last_at = time.monotonic()
        self.busy_s += self.last_at - started

    def as_json(self) -> dict[str, Any]:
        """Counts for GET /stats."""
        return {
            "requests": dict(self.requests),
            "failed": self.failed,
            "max_in_flight": dict(self.max_in_flight),
            "mean_in_flight": self.busy_s / max(1e-9, self.last_at - (self.first_at or 0.0)),
        }


def make_app(latency_s: float, fail_rate: float, seed: int) -> web.Application:
    """The aiohttp app: chat completions after `latency_s`, HTTP 500 on `fail_rate` of calls."""
    rng = random.Random(seed)
    stats = Stats()

    async def chat(http: web.Request) -> web.Response:
        raw = await http.read()
        body = json.loads(raw) if raw else {}
        request = RecordedRequest(http.path, body, len(raw))
        name = request.tool_name or "content"
        stats.enter(name)
        started = time.monotonic()
        try:
            await asyncio.sleep(latency_s)
            if rng.random() < fail_rate:
                stats.failed += 1
                err = {"error": {"message": "injected failure", "type": "server_error"}}
                return web.json_response(err, status=500)
            return web.json_response(answer(request))
        finally:
            stats.leave(name, started)

    async def get_stats(_: web.Request) -> web.Response:
        return web.json_response(stats.as_json())

    async def reset(_: web.Request) -> web.Response:
        stats.requests.clear()
        stats.max_in_flight = Counter(stats.in_flight)
        stats.failed, stats.busy_s, stats.first_at = 0, 0.0, None
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(
        [
            web.post("/v1/chat/completions", chat),
            web.get("/stats", get_stats),
            web.post("/stats/reset", reset),
        ]
    )
    return app


async def _serve(latency_s: float, fail_rate: float, seed: int, port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    runner = web.AppRunner(make_app(latency_s, fail_rate, seed), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


class FixedLatencyLLM:
    """The server above in its own process (its event loop costs the benchmark no CPU share)."""

    def __init__(self, latency_s: float, fail_rate: float = 0.0, seed: int = 0) -> None:
        """Start the server and wait until it listens."""
        self.latency_s, self.fail_rate = latency_s, fail_rate
        args = [sys.executable, "-m", "bench.fixed_latency_llm", f"--latency={latency_s}"]
        args += [f"--fail-rate={fail_rate}", f"--seed={seed}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fixed-latency LLM did not start (exit {self.proc.wait()})")
        self.port = int(json.loads(line)["port"])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        """Counts since the last reset (see Stats)."""
        result: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/stats").json()
        return result

    def reset(self) -> None:
        """Start the counts again."""
        httpx.post(f"http://127.0.0.1:{self.port}/stats/reset").raise_for_status()

    def stop(self) -> None:
        """Stop the server process."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> FixedLatencyLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds before each answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of calls answered 500")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        asyncio.run(_serve(args.latency, args.fail_rate, args.seed, args.port))
    except KeyboardInterrupt:
        print(f"served for {time.monotonic() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
