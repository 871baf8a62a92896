"""The service's read API over HTTP (httpx), as the dashboard and `tui --once` use it."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from kura_stream.service.api_models import (
    ClusterDetail,
    ClusterView,
    RecomputeStatus,
    ServiceStatus,
)

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)
_CLUSTER_LIST = TypeAdapter(list[ClusterView])


class ServiceUnavailable(Exception):
    """The service could not be reached or gave no usable answer.

    The dashboard shows it as disconnected and tries again on the next poll.
    """


class HttpReadAPI:
    """A ReadAPI over the service's HTTP routes, with short timeouts.

    Transport errors, timeouts, 5xx answers and answers that do not parse raise
    ServiceUnavailable; a 404 on a cluster or a recompute raises KeyError, as the ReadAPI
    Protocol says. The client is created on first use, in the event loop that uses it.

    Args:
        base_url: E.g. "http://127.0.0.1:8799".
        timeout_s: Read timeout of one request, seconds.
        connect_timeout_s: Connect timeout, seconds.
    """

    def __init__(
        self, base_url: str, *, timeout_s: float = 2.0, connect_timeout_s: float = 1.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"HttpReadAPI({self.base_url!r})"

    async def __aenter__(self) -> HttpReadAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout)
        return self._client

    async def _call(self, method: str, path: str, *, missing: str | None = None) -> Any:
        try:
            response = await self._http().request(method, path)
        except httpx.TimeoutException as err:
            raise ServiceUnavailable(f"{self.base_url}: timed out") from err
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"{self.base_url}: {type(err).__name__} {err}") from err
        if response.status_code == 404 and missing is not None:
            raise KeyError(missing)
        if response.status_code >= 400:
            raise ServiceUnavailable(
                f"{self.base_url}{path}: HTTP {response.status_code} {_detail(response)}".rstrip()
            )
        try:
            return response.json()
        except ValueError as err:
            raise ServiceUnavailable(f"{self.base_url}{path}: answer is not JSON") from err

    async def _get_model(self, model: type[_M], method: str, path: str, **kw: str) -> _M:
        data = await self._call(method, path, **kw)
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise ServiceUnavailable(
                f"{path}: unexpected answer ({err.error_count()} errors)"
            ) from err

    async def status(self) -> ServiceStatus:
        """Counts and health (`GET /status`)."""
        return await self._get_model(ServiceStatus, "GET", "/status")

    async def clusters(self) -> list[ClusterView]:
        """Every cluster, base and meta (`GET /clusters`)."""
        data = await self._call("GET", "/clusters")
        try:
            return _CLUSTER_LIST.validate_python(data)
        except ValidationError as err:
            raise ServiceUnavailable(
                f"/clusters: unexpected answer ({err.error_count()} errors)"
            ) from err

    async def cluster(self, cluster_id: str) -> ClusterDetail:
        """One cluster with children and sample summaries; KeyError if unknown."""
        path = f"/clusters/{quote(cluster_id, safe='')}"
        return await self._get_model(ClusterDetail, "GET", path, missing=cluster_id)

    async def request_recompute(self) -> RecomputeStatus:
        """Ask for a full recompute (`POST /recompute`)."""
        return await self._get_model(RecomputeStatus, "POST", "/recompute")

    async def recompute_status(self, request_id: str) -> RecomputeStatus:
        """Where a requested recompute is; KeyError if the id is unknown."""
        path = f"/recompute/{quote(request_id, safe='')}"
        return await self._get_model(RecomputeStatus, "GET", path, missing=request_id)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return ""
