"""bench_llm_path's reading of `kura-stream batch` output."""

from __future__ import annotations

import pytest

from bench.bench_llm_path import batch_outcome


def test_batch_outcome_reads_the_run_line_not_a_retry_log() -> None:
    stderr = (
        "INFO summary of x: attempt 1/4 failed (HTTP 500); retry in 0.2s\n"
        "256 summarised, 0 failed, 8 base clusters, 8 in all; 41.6s (summarise 24.4s, "
        "cluster+name 1.7s)\n"
    )
    assert batch_outcome(stderr) == (24.4, 0)
    assert batch_outcome("3 summarised, 2 failed, 1 base; 1.0s (summarise 0.5s)\n") == (0.5, 2)
    with pytest.raises(RuntimeError, match="no summary line"):
        batch_outcome("attempt 1/4 failed\n")
