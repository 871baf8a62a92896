"""An LLM endpoint that is down: conversations wait and come again, never dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.settings import LLMSettings
from tests.fixtures_kafka import free_ports
from tests.integration.service_harness import ServiceUnderTest, wait_for
from tests.integration.test_service import _payloads, _produce, _read_all

pytestmark = [pytest.mark.kafka, pytest.mark.llm]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tcp_relay(port: int, target: str) -> AsyncIterator[None]:
    """Forward 127.0.0.1:port to target (host:port): the endpoint 'comes back' on that port."""
    host, target_port = target.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_r, upstream_w = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


@pytest.fixture
def service(
    kafka_bootstrap: str, tmp_path: Path, static_models: None, llm_settings: LLMSettings
) -> Iterator[tuple[ServiceUnderTest, int]]:
    port = free_ports(1)[0]
    svc = ServiceUnderTest(
        bootstrap=kafka_bootstrap,
        workdir=tmp_path,
        offline=False,
        extra_env={
            "KURA_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "KURA_LLM_MODEL": llm_settings.model,
            "KURA_LLM_MAX_RETRIES": "1",
        },
    )
    yield svc, port
    svc.stop()


async def test_conversations_wait_for_the_endpoint_and_none_is_dead_lettered(
    service: tuple[ServiceUnderTest, int], llm_settings: LLMSettings
) -> None:
    svc, port = service
    svc.start()
    await _produce(svc, _payloads(load_sharegpt_conversations(1)))
    wait_for(lambda: svc.get("/status")["llm_ok"] is False, 120, "endpoint not marked down")
    health = svc.get_any("/health")
    assert (health["status"], health["llm"]) == ("degraded", False)
    await asyncio.sleep(3)  # redeliveries while it is down
    status = svc.get("/status")
    assert (status["conversations"], status["dlq"]) == (0, 0)
    upstream = llm_settings.base_url.removeprefix("http://").split("/")[0]
    async with tcp_relay(port, upstream):
        await asyncio.to_thread(
            wait_for, lambda: svc.get("/status")["conversations"] == 1, 300, "not summarised"
        )
        assert svc.get("/status")["llm_ok"] is True
    assert await _read_all(svc, "KURA_KAFKA_TOPIC_DLQ", 10**6, timeout_s=5) == []
    logs = "".join(p.read_text() for p in svc.workdir.glob("serve-*.log"))
    assert logs.count("instructor") <= 10, "the LLM client's errors were not throttled"
    assert "redelivering in" in logs
