"""How long a full recompute takes, and how much memory, as the store grows.

For each size N, fills an embedded store (Qdrant's engine, durable, in a temporary folder)
through the live assigner with N synthetic conversations: 384-wide vectors around 300 topic
centres (so the live stream has built clusters), each with a short summary naming its topic.
Then times plan_recompute (snapshot, k-means, naming with the offline namers, hierarchy,
UMAP map) and apply_recompute, and reports the process's peak RSS during the recompute.

    .venv/bin/python -m bench.bench_recompute [--sizes 10000,50000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.million_parts import conversation, peak_mb, reset_peak
from kura_stream.adapters.store_factory import open_store
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.service.assigner import Assigner
from kura_stream.service.recompute import RecomputeParams, apply_recompute, plan_recompute
from kura_stream.settings import StoreSettings
from kura_stream.stages.assign import AssignParams
from kura_stream.stages.cluster import normalise
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import EmbeddedConversation

DIM = 384
TOPICS = 300
WORDS = [
    "python",
    "recipe",
    "travel",
    "poem",
    "email",
    "invoice",
    "garden",
    "music",
    "budget",
    "resume",
    "sql",
    "physics",
]


def _items(n: int, rng: np.random.Generator) -> list[EmbeddedConversation]:
    centres = normalise(rng.normal(size=(TOPICS, DIM)).astype(np.float32))
    topics = rng.integers(TOPICS, size=n)
    vectors = normalise((centres[topics] + 0.03 * rng.normal(size=(n, DIM))).astype(np.float32))
    now = datetime.now(UTC)
    out = []
    for i, (t, v) in enumerate(zip(topics, vectors, strict=True)):
        words = f"{WORDS[t % len(WORDS)]} {WORDS[(t // len(WORDS)) % len(WORDS)]} topic {t}"
        out.append(conversation(f"c{i}", f"The user asks about {words}.", v, now))
    return out


def _embed(texts: list[str]) -> np.ndarray:
    # The parent namer embeds names to group them; a hash embedding is enough to time it.
    rng = np.random.default_rng(abs(hash(tuple(texts))) % 2**32)
    return normalise(rng.normal(size=(len(texts), DIM)).astype(np.float32))


async def run(n: int, folder: Path) -> None:
    rng = np.random.default_rng(n)
    store = open_store(StoreSettings(path=folder / f"store-{n}"), DIM)
    try:
        assigner = Assigner(store, AssignParams(0.55, 0.65, 5), min_size_shown=5)
        started = time.perf_counter()
        items = _items(n, rng)
        for start in range(0, n, 512):
            assigner.process(items[start : start + 512])
        filled = time.perf_counter() - started
        live = len(store.list_clusters())
        del items
        reset_peak()
        before_mb = peak_mb()
        started = time.perf_counter()
        plan = await plan_recompute(
            store,
            namer=OfflineClusterNamer(),
            parent_namer=OfflineParentNamer(),
            embed=_embed,
            params=RecomputeParams(),
        )
        planned = time.perf_counter() - started
        assert plan is not None
        started = time.perf_counter()
        apply_recompute(store, plan)
        applied = time.perf_counter() - started
        base = sum(1 for c in plan.clusters if c.level == 0)
        steps = " ".join(f"{sec:5.1f}" for sec in plan.phases.values())
        print(
            f"{n:>8} {filled:8.1f} {live:>6} {base:>6} {planned:9.1f} {applied:8.1f} "
            f"{before_mb:9.0f} {peak_mb():9.0f}   {steps}"
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,100000")
    args = parser.parse_args()
    limit_blas_threads()
    print(
        f"{'N':>8} {'fill s':>8} {'live':>6} {'base':>6} {'plan s':>9} {'apply s':>8} "
        f"{'RSS MB':>9} {'peak MB':>9}   snapshot kmeans naming hierarchy map (s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            asyncio.run(run(n, Path(tmp)))


if __name__ == "__main__":
    main()
