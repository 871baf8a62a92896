"""Failures that say "try again later", shared by the stages and the consumers.

A consumer redelivers a batch that failed with one of these, after a growing pause, and never
dead-letters its records for it: the records are fine, something they need is not.
"""

from __future__ import annotations


class TransientError(Exception):
    """A failure of something outside the record (an endpoint, a store, the network)."""

    def __init__(self, reason: str) -> None:
        """Carry a one-line reason."""
        super().__init__(reason)
        self.reason = reason


class EndpointUnavailableError(TransientError):
    """The LLM endpoint did not answer (refused, timed out, 5xx, rate-limited) after retries."""
