"""`kura-stream batch` speed: a cold run, then the same input again from cache and checkpoints.

Prints per-stage seconds of both runs and the speed-up, for the offline path on N real
ShareGPT conversations and, when --llm-n > 0, for the LLM path on a smaller sample (it
starts the local LLM server unless KURA_LLM_BASE_URL is set).

    .venv/bin/python -m bench.bench_batch [--n 2000] [--llm-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from kura_stream.batch import BatchResult, run_batch
from kura_stream.bootstrap import build_insight, limit_blas_threads
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.settings import Settings
from kura_stream.types import Conversation


def _once(
    convs: list[Conversation], *, offline: bool, out: Path, cache: Path
) -> tuple[BatchResult, float]:
    settings = Settings()
    insight = build_insight(settings, offline=offline)
    started = time.perf_counter()
    result = asyncio.run(
        run_batch(
            convs,
            insight=insight,
            out=out,
            cache_path=cache,
            min_size_shown=settings.clustering.min_cluster_size_shown,
            concurrency=settings.llm.concurrency,
        )
    )
    return result, time.perf_counter() - started


def _report(label: str, convs: list[Conversation], offline: bool, tmp: Path) -> None:
    out, cache = tmp / label, tmp / f"{label}.sqlite"
    first, cold = _once(convs, offline=offline, out=out, cache=cache)
    second, warm = _once(convs, offline=offline, out=out, cache=cache)
    third, cache_only = _once(convs, offline=offline, out=tmp / f"{label}-cache-only", cache=cache)
    base = sum(c.level == 0 for c in first.clusters)
    print(f"\n== {label}: {len(convs)} conversations, {len(first.summaries)} summarised, "
          f"{len(first.failures)} failed, {base} base clusters")  # fmt: skip
    print(f"{'stage':14} {'cold s':>9} {'warm s':>9} {'cache-only s':>13}")
    for stage in first.timings:
        times = (first.timings[stage], second.timings[stage], third.timings[stage])
        print("{:14} {:9.2f} {:9.2f} {:13.2f}".format(stage, *times))
    print(f"{'total':14} {cold:9.2f} {warm:9.2f} {cache_only:13.2f}")
    print(f"speed-up from checkpoints + cache: {cold / warm:.1f}x; from the cache alone "
          f"(new output folder): {cold / cache_only:.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--llm-n", type=int, default=0)
    args = parser.parse_args()
    limit_blas_threads()
    with tempfile.TemporaryDirectory() as tmp:
        convs = load_sharegpt_conversations(max(args.n, args.llm_n))
        _report("offline", convs[: args.n], True, Path(tmp))
        if args.llm_n:
            server = None
            if not os.environ.get("KURA_LLM_BASE_URL"):
                from kura_stream.adapters.llm_server import LLMServerConfig, LocalLLMServer

                server = LocalLLMServer(LLMServerConfig.from_settings(Settings()))
                server.start()
            try:
                _report("llm", convs[: args.llm_n], False, Path(tmp))
            finally:
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
