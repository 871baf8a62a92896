"""Cluster store benchmark: upserts/s, top-10 search latency, reopen time and peak RSS per store.

Usage:
    .venv/bin/python bench/bench_store.py                          # sizes 10000,100000
    .venv/bin/python bench/bench_store.py --sizes 10000 --stores edge-wal,qdrant-memory

Stores: qdrant-memory (qdrant-client location=":memory:"), and the embedded edge store on disk
in its three durability modes: edge-wal (the default: WAL fsync'd per write call), edge-flush
(engine flush per write call) and edge-none (no sync; survives a killed process only). Each
(store, size) runs in its own subprocess so that peak RSS belongs to that case alone; the
peak includes the benchmark's own vectors (size x dim float32) and payloads.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kura_stream.protocols import ClusterStore  # noqa: E402
from kura_stream.records import ConversationPoint  # noqa: E402

STORES = ("qdrant-memory", "edge-wal", "edge-flush", "edge-none")
BATCH = 256
CLUSTERS = 100


def unit_vectors(n: int, dim: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def open_case_store(name: str, dim: int, path: Path) -> ClusterStore:
    if name == "qdrant-memory":
        from qdrant_client import QdrantClient

        from kura_stream.adapters.qdrant_store import QdrantClusterStore

        return QdrantClusterStore(QdrantClient(location=":memory:"), "bench", dim)
    from kura_stream.adapters.edge_store import EdgeClusterStore

    mode = name.removeprefix("edge-")
    assert mode in ("wal", "flush", "none"), name
    return EdgeClusterStore(path, dim, durability=mode)  # type: ignore[arg-type]


def run_case(name: str, n: int, dim: int, queries: int, workdir: Path) -> dict[str, Any]:
    vectors = unit_vectors(n, dim, seed=1)
    points = [
        ConversationPoint(
            chat_id=f"chat-{i:07d}",
            vector=vectors[i],
            cluster_id=f"k{i % CLUSTERS}",
            payload={
                "summary": f"The user asks how to do task number {i} with a short example.",
                "created_at": "2025-01-01T00:00:00Z",
                "turns": i % 17,
            },
        )
        for i in range(n)
    ]
    path = workdir / f"{name}-{n}"
    store = open_case_store(name, dim, path)
    start = time.perf_counter()
    for b in range(0, n, BATCH):
        store.upsert_conversations(points[b : b + BATCH])
    upsert_s = time.perf_counter() - start

    qs = unit_vectors(queries, dim, seed=2)
    latencies = []
    for q in qs:
        t = time.perf_counter()
        hits = store.search_conversations(q, 10)
        latencies.append((time.perf_counter() - t) * 1000)
        assert len(hits) == 10
    t = time.perf_counter()
    filtered = store.search_conversations(qs[0], 10, cluster_id="k3")
    filtered_ms = (time.perf_counter() - t) * 1000
    assert all(int(h.id.split("-")[1]) % CLUSTERS == 3 for h in filtered)
    t = time.perf_counter()
    per_cluster = store.count_conversations("k3")
    count_ms = (time.perf_counter() - t) * 1000
    assert per_cluster == len(range(3, n, CLUSTERS))

    reopen_s: float | None = None
    t = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - t
    if name.startswith("edge"):
        t = time.perf_counter()
        store = open_case_store(name, dim, path)
        reopen_s = time.perf_counter() - t
        assert store.count_conversations() == n
        store.close()

    return {
        "store": name,
        "n": n,
        "upserts_per_s": n / upsert_s,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "filtered_ms": filtered_ms,
        "count_ms": count_ms,
        "close_s": close_s,
        "reopen_s": reopen_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'store':<14} {'points':>7} {'upserts/s':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'filt ms':>8} {'count ms':>8} {'close s':>8} {'reopen s':>9} {'peak RSS MB':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        reopen = "-" if r["reopen_s"] is None else f"{r['reopen_s']:.2f}"
        lines.append(
            f"{r['store']:<14} {r['n']:>7} {r['upserts_per_s']:>10,.0f} {r['p50_ms']:>8.2f} "
            f"{r['p95_ms']:>8.2f} {r['filtered_ms']:>8.2f} {r['count_ms']:>8.2f} "
            f"{r['close_s']:>8.2f} {reopen:>9} {r['peak_rss_mb']:>12,.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated point counts")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated store names")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100, help="top-10 searches per case")
    parser.add_argument("--dir", type=Path, default=None, help="where edge stores are written")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # store:n, subprocess
    args = parser.parse_args()

    if args.case:
        name, n = args.case.split(":")
        print(json.dumps(run_case(name, int(n), args.dim, args.queries, args.dir)))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    stores = [s for s in args.stores.split(",") if s]
    unknown = set(stores) - set(STORES)
    if unknown:
        parser.error(f"unknown stores {sorted(unknown)}; choose from {', '.join(STORES)}")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-store-") as tmp:
        for n in sizes:
            for name in stores:
                cmd = [sys.executable, __file__, "--case", f"{name}:{n}", "--dim", str(args.dim)]
                cmd += ["--queries", str(args.queries), "--dir", tmp]
                print(f"running {name} at {n:,} points ...", file=sys.stderr, flush=True)
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    raise SystemExit(f"case {name}:{n} failed")
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"dim={args.dim}, batches of {BATCH}, {args.queries} top-10 queries per case, "
        f"{CLUSTERS} clusters; filt = one top-10 search in one cluster, count = exact count "
        f"of one cluster"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
