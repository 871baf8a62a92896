"""Bounded, retried structured LLM calls through instructor: backoff and one-line error reasons."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import instructor
import openai
from instructor.core import IncompleteOutputException, InstructorRetryException
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
        base_delay_s: Backoff before the second attempt; doubles each time.
        max_delay_s: Backoff ceiling.
    """

    validation_retries: int = 2
    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), with jitter."""
        base = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return float(base * (0.75 + 0.5 * random.random()))


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

    Returns:
        The validated output.

    Raises:
        LLMCallError: every attempt failed, or a failure was final; `reason` says why.
    """

    async def call() -> T:
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        result: T = await client.chat.completions.create(
            response_model=response_model,
            messages=messages,  # type: ignore[arg-type]
            model=model,
            max_retries=policy.validation_retries,
            **kwargs,
        )
        return result

    return await _with_retries(call, policy=policy, what=what)


async def _with_retries(call: Callable[[], Awaitable[T]], *, policy: RetryPolicy, what: str) -> T:
    """Await `call` until it succeeds, fails for good, or `policy.attempts` are spent.

    Raises:
        LLMCallError: every attempt failed, or a failure was final; `reason` says why.
    """
    attempts = max(1, policy.attempts)
    reason = "not attempted"
    unavailable = False
    for attempt in range(1, attempts + 1):
        try:
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
