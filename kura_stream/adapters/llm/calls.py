"""Bounded, retried structured LLM calls through instructor: backoff and one-line error reasons."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import instructor
import openai
from instructor.core import IncompleteOutputException, InstructorRetryException
from instructor.function_calls import ResponseSchema, response_schema
from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

_RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently an LLM call is retried.

    Attributes:
        validation_retries: instructor's max_retries: re-asks after an output that does not
            validate (the error is shown to the model).
        attempts: Attempts in all for transient failures (connection, timeout, HTTP 5xx/429,
            a body that is not JSON, an output cut at max_tokens).
        base_delay_s: Backoff before the second attempt; doubles each time. Short: a call
            holds no slot while it waits (see CallSlots), so a retry costs its batch little
            and the endpoint none; a longer outage is the stream's to wait out (redelivery).
        max_delay_s: Backoff ceiling.
    """

    validation_retries: int = 2
    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), with jitter."""
        base = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return float(base * (0.75 + 0.5 * random.random()))


class CallSlots:
    """At most `limit` LLM calls in flight at once, over every caller that shares it.

    A call holds a slot for one attempt only: while it backs off before the next attempt,
    another call has the slot, so the endpoint's window stays full. A retry waits ahead of
    first attempts, so a failed call does not hold its batch behind the queue.
    """

    def __init__(self, limit: int) -> None:
        """Allow `limit` calls in flight (>= 1)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self._queues: tuple[collections.deque[asyncio.Future[None]], ...] = (
            collections.deque(),  # retries
            collections.deque(),  # first attempts
        )

    @contextlib.asynccontextmanager
    async def slot(self, *, retry: bool = False) -> AsyncIterator[None]:
        """Hold a slot for the body (a retry is served before first attempts)."""
        await self._acquire(retry)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, retry: bool) -> None:
        if self.in_flight < self.limit and not any(self._queues):
            self._take()
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._queues[0 if retry else 1]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over as the caller was cancelled
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def _release(self) -> None:
        self.in_flight -= 1
        while self.in_flight < self.limit:
            waiter = next((q.popleft() for q in self._queues if q), None)
            if waiter is None:
                return
            if not waiter.done():
                self._take()
                waiter.set_result(None)


class LLMCallError(Exception):
    """An LLM call failed for good; `reason` says why in one line.

    `unavailable` is True when the endpoint never gave an answer (refused, timed out, 5xx,
    rate-limited): the input is not at fault, and a stream should try it again later.
    """

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unavailable = unavailable


def endpoint_unavailable(exc: BaseException) -> bool:
    """Whether a failed call means the endpoint did not answer, rather than a bad answer."""
    for e in _chain(exc):
        if isinstance(e, openai.APITimeoutError | openai.APIConnectionError):
            return True
        if isinstance(e, openai.APIStatusError):
            return e.status_code >= 500 or e.status_code in _RETRYABLE_STATUS
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def classify(exc: BaseException) -> tuple[bool, str]:
    """Whether a failed call is worth another attempt, and a one-line reason.

    Args:
        exc: What the instructor call raised (usually InstructorRetryException wrapping the
            real cause).

    Returns:
        (transient, reason): transient for transport failures and truncated outputs;
        invalid outputs (already re-asked by instructor) and client errors are final.
    """
    for e in _chain(exc):
        if isinstance(e, openai.APITimeoutError):
            return True, "timeout"
        if isinstance(e, openai.APIConnectionError):
            return True, f"connection error: {e}"
        if isinstance(e, openai.APIStatusError):
            code = e.status_code
            transient = code >= 500 or code in _RETRYABLE_STATUS
            return transient, f"HTTP {code}: {_one_line(e.message)}"
        if isinstance(e, IncompleteOutputException):
            return True, "output cut at max_tokens"
        if isinstance(e, ValidationError):
            return False, f"invalid output: {_one_line(str(e))}"
        if isinstance(e, json.JSONDecodeError):
            return True, f"response is not JSON: {e.msg}"
    return False, f"{type(exc).__name__}: {_one_line(str(exc))}"


@functools.lru_cache(maxsize=64)
def _wrapped(response_model: type[BaseModel]) -> type[BaseModel]:
    """The instructor wrapper of a response model, made once per model.

    Given a plain pydantic model, instructor builds the wrapper (pydantic create_model and its
    JSON schema) on every call: about 3 ms of the event loop's time per call, measured, which
    at 64 calls/s is a fifth of a core. A model already wrapped is used as it is.
    """
    if issubclass(response_model, ResponseSchema):
        return response_model
    wrapped: type[BaseModel] = response_schema(response_model)
    return wrapped


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


async def structured_call(
    client: instructor.AsyncInstructor,
    response_model: type[T],
    messages: list[dict[str, str]],
    *,
    model: str,
    policy: RetryPolicy,
    temperature: float,
    max_tokens: int,
    what: str,
    slots: CallSlots | None = None,
) -> T:
    """One structured completion, retried with exponential backoff on transient failures.

    instructor re-asks invalid outputs (`policy.validation_retries`); the retry loop retries
    transport failures (`policy.attempts` in all). Messages are sent as they are: no context
    is passed, so instructor applies no Jinja templating to user text containing braces.

    Args:
        client: An async instructor client.
        response_model: The pydantic model the output must validate against.
        messages: Chat messages.
        model: Model name sent with the request.
        policy: Retry policy.
        temperature: Sampling temperature.
        max_tokens: Ceiling on generated tokens (a small model can loop).
        what: What is being asked, for log lines.
        slots: Bounds the calls in flight, one attempt at a time (none: the caller bounds).

    Returns:
        The validated output.

    Raises:
        LLMCallError: every attempt failed, or a failure was final; `reason` says why.
    """
    wrapped = cast(type[T], _wrapped(response_model))

    async def call() -> T:
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        result: T = await client.chat.completions.create(
            response_model=wrapped,
            messages=messages,  # type: ignore[arg-type]
            model=model,
            max_retries=policy.validation_retries,
            **kwargs,
        )
        return result

    return await _with_retries(call, policy=policy, what=what, slots=slots)


async def _with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    what: str,
    slots: CallSlots | None = None,
) -> T:
    """Await `call` until it succeeds, fails for good, or `policy.attempts` are spent.

    Each attempt holds one of `slots` (when given); the backoff between attempts holds none.

    Raises:
        LLMCallError: every attempt failed, or a failure was final; `reason` says why.
    """
    attempts = max(1, policy.attempts)
    reason = "not attempted"
    unavailable = False
    for attempt in range(1, attempts + 1):
        try:
            if slots is None:
                return await call()
            async with slots.slot(retry=attempt > 1):
                return await call()
        except (InstructorRetryException, IncompleteOutputException, openai.OpenAIError) as exc:
            transient, reason = classify(exc)
            unavailable = endpoint_unavailable(exc)
        except (ValidationError, json.JSONDecodeError) as exc:
            transient, reason = classify(exc)
            unavailable = False
        if not transient:
            logger.warning("%s failed: %s", what, reason)
            raise LLMCallError(reason)
        if attempt < attempts:
            pause = policy.delay(attempt)
            logger.info(
                "%s: attempt %d/%d failed (%s); retry in %.2fs",
                what,
                attempt,
                attempts,
                reason,
                pause,
            )
            await asyncio.sleep(pause)
    logger.warning("%s failed after %d attempts: %s", what, attempts, reason)
    raise LLMCallError(f"{reason} (after {attempts} attempts)", unavailable=unavailable)
