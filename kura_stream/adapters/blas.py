"""The BLAS thread limit that every process doing numeric work sets once at start-up."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def limit_blas_threads() -> None:
    """One BLAS thread: small matrix products beside other busy work were 100x slower with more."""
    threadpool_limits(limits=1, user_api="blas")
