"""A million conversations in the embedded store (issue #16, target 4).

Fills an embedded store (Qdrant's engine in-process, durable) with N conversations through the
Assigner use case, in batches of 512 as the assign consumer gets them. The texts are synthetic
near-duplicates (topic templates with varied words) embedded once per template with the static
embedder; each conversation takes its template's vector with a little noise, so the live
stream builds clusters. Then:

- the live assignment rate (conversations/s) over a window at ~10k stored and at ~N stored;
- a recompute through the Recomputer (the service's code path, holding the write lock only to
  swap) while a trickle of new conversations is assigned concurrently under the write lock:
  plan and apply seconds, the process's peak RSS during it (VmHWM, reset first), and the
  longest the trickle waited for the lock (the stream's pause);
- the Assigner's state saved and the store closed, as the service's clean shutdown does; then
  reopened in a fresh process taking that state (the clean-restart path), and once more
  rebuilding the state from every stored vector (the path after a crash).

    .venv/bin/python -m bench.bench_million [--n 1000000] [--path /tmp/kura-million]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.million_parts import RssSampler, Traffic, peak_mb, reset_peak
from kura_stream.adapters.state_file import state_file_for
from kura_stream.adapters.store_factory import open_store
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.protocols import ClusterStore
from kura_stream.service.assigner import Assigner
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.recompute import RecomputeParams
from kura_stream.service.recompute_runner import Recomputer
from kura_stream.settings import StoreSettings
from kura_stream.stages.assign import AssignParams
from kura_stream.stages.cluster import normalise
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from tests.fakes.no_outputs import NoOutputs

BATCH = 512
PARAMS = AssignParams(0.55, 0.65, 5)


def _embed(texts: list[str]) -> npt.NDArray[np.float32]:
    # The parent namer embeds names to group them; a hash embedding is enough to time it.
    rng = np.random.default_rng(abs(hash(tuple(texts))) % 2**32)
    return normalise(rng.normal(size=(len(texts), 64)).astype(np.float32))


def fill(assigner: Assigner, traffic: Traffic, n: int, window: int) -> dict[str, float]:
    """Assign n conversations in consumer-sized batches; the rate over the first and last window."""
    marks: list[tuple[int, float]] = []
    clock = time.perf_counter()
    for done in range(0, n, BATCH):
        marks.append((done, time.perf_counter()))
        assigner.process(traffic.batch(min(BATCH, n - done)))
        if done % 100_000 < BATCH:
            print(f"  stored {done:,} after {marks[-1][1] - clock:,.0f}s", flush=True)
    marks.append((n, time.perf_counter()))

    def rate(low: int, high: int) -> float:
        a = next(m for m in marks if m[0] >= low)
        b = next(m for m in marks if m[0] >= high)
        return (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] else float("nan")

    early = min(10_000, max(n - window, 0))
    return {
        "early": rate(early, early + window),
        "late": rate(n - window, n),
        "fill_s": marks[-1][1] - clock,
        "window": window,
    }


async def recompute_under_trickle(
    store: ClusterStore, assigner: Assigner, traffic: Traffic
) -> dict[str, float]:
    """One recompute through the Recomputer while a trickle is assigned under the write lock."""
    lock = asyncio.Lock()
    recomputer = Recomputer(
        store=store,
        assigner=assigner,
        namer=OfflineClusterNamer(),
        parent_namer=OfflineParentNamer(),
        embed=_embed,
        params=RecomputeParams(),
        outputs=NoOutputs(),
        metrics=ServiceMetrics(),
        write_lock=lock,
    )
    waits: list[float] = []
    stalls: list[tuple[float, float]] = []
    done = asyncio.Event()

    async def trickle() -> None:
        # A batch is due 50 ms after the last one was stored; its wait runs from then to the
        # lock taken, so time the event loop was kept from running it counts too.
        items = traffic.batch(32, prefix="t")
        due = time.perf_counter()
        while not done.is_set():
            asked = time.perf_counter()
            async with lock:
                now = time.perf_counter()
                waits.append(now - asked)
                stalls.append((now - due, now - started))
                assigner.process(items)
            items = traffic.batch(32, prefix="t")
            due = time.perf_counter() + 0.05
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    reset_peak()
    before = peak_mb()
    started = time.perf_counter()
    sampler = RssSampler()
    task = asyncio.create_task(trickle())
    status = await recomputer.run("bench")
    total = time.perf_counter() - started
    _, peak_at = sampler.stop()
    step = max(1, len(sampler.samples) // 24)
    print("  RSS MB at s:", " ".join(f"{mb:.0f}@{t:.0f}" for mb, t in sampler.samples[::step]))
    done.set()
    await task
    if status.state != "completed":
        raise RuntimeError(f"recompute {status.state}: {status.detail}")
    timings = dict(recomputer.timings)
    timings |= {"total_s": total, "peak_mb": peak_mb(), "pause_ms": 1000 * max(waits, default=0)}
    stall, at = max(stalls, default=(0.0, 0.0))
    timings |= {"stall_ms": 1000 * stall, "stall_at_s": at}
    timings |= {"before_mb": before, "peak_at_s": peak_at}
    timings["trickled"] = 32 * len(waits)
    return timings


def reopen(path: Path, dim: int, *, crashed: bool) -> float:
    """Seconds to open the store and get the Assigner's state, in this process.

    After a clean close the state saved then is taken; after a crash (or with crashed) it
    is rebuilt from every stored vector.
    """
    started = time.perf_counter()
    store = open_store(StoreSettings(path=path), dim)
    try:
        saved = None if crashed else state_file_for(store)
        assigner = Assigner(store, PARAMS, min_size_shown=5, saved=saved)
        seconds = time.perf_counter() - started
        state = assigner.state
        how = "rebuilt" if crashed else "clean close"
        print(f"reopened ({how}): {state.total:,} conversations, {len(state.ids)} clusters")
    finally:
        store.close()
    return seconds


def _row(what: str, value: str, target: str = "", ok: bool | None = None) -> str:
    verdict = "" if ok is None else ("pass" if ok else "MISS")
    return f"{what:<38} {value:>14}  {target:<12} {verdict}"


def table(
    n: int, rates: dict[str, float], rec: dict[str, float], reopen_s: tuple[float, float]
) -> Iterator[str]:
    """The result lines."""
    yield _row("measure", "figure", "target", None) + "verdict"
    yield _row("fill (s)", f"{rates['fill_s']:,.0f}")
    late, early, window = rates["late"], rates["early"], int(rates["window"])
    yield _row(f"live rate, 10k..{10_000 + window:,} stored (conv/s)", f"{early:,.0f}")
    yield _row(
        f"live rate, {n - window:,}..{n:,} stored (conv/s)", f"{late:,.0f}", f"({late / early:.0%})"
    )
    yield _row("recompute plan (s)", f"{rec['plan_s']:.1f}")
    phases = ("snapshot", "kmeans", "naming", "hierarchy", "map")
    steps = " ".join(f"{rec.get(f'plan_{p}_s', float('nan')):.1f}" for p in phases)
    yield _row("  snapshot kmeans naming hierarchy map", steps)
    yield _row("recompute apply, outside the lock (s)", f"{rec['write_s']:.1f}")
    yield _row("recompute apply, under the lock (s)", f"{rec['locked_s']:.2f}")
    replayed = rec.get("locked_replayed", 0)
    yield _row(
        "  of which replaying arrivals (s)",
        f"{rec.get('locked_replay_s', 0):.2f}",
        f"({replayed:.0f})",
    )
    total, peak, pause = rec["total_s"], rec["peak_mb"], rec["pause_ms"]
    yield _row("recompute total (s)", f"{total:.1f}", "<= 300 s", total <= 300)
    yield _row("RSS before the recompute (MB)", f"{rec['before_mb']:,.0f}")
    yield _row("peak RSS during recompute (MB)", f"{peak:,.0f}", "<= 4096", peak <= 4096)
    yield _row("  peak sampled at (s into the recompute)", f"{rec['peak_at_s']:.0f}")
    yield _row("stream's longest lock wait (ms)", f"{pause:.0f}", "<= 250 ms", pause <= 250)
    stall = f"{rec['stall_ms']:.0f} at {rec['stall_at_s']:.0f}s"
    yield _row("  longest a due batch waited (ms)", stall, "(any cause)")
    yield _row("  (trickled during the recompute)", f"{rec['trickled']:,.0f}")
    clean, crashed = reopen_s
    yield _row("save at a clean close (s)", f"{rec['save_s']:.1f}")
    yield _row("reopen after a clean close (s)", f"{clean:.1f}", "<= 30 s", clean <= 30)
    yield _row("reopen after a crash: rebuild (s)", f"{crashed:.1f}", "<= 30 s", crashed <= 30)


async def fill_and_recompute(
    n: int, path: Path, traffic: Traffic
) -> tuple[dict[str, float], dict[str, float]]:
    """Fill the store, then time a recompute under a trickle; the store is closed after."""
    store = open_store(StoreSettings(path=path), traffic.vectors.shape[1])
    try:
        assigner = Assigner(store, PARAMS, min_size_shown=5, saved=state_file_for(store))
        rates = fill(assigner, traffic, n, window=min(50_000, max(n // 10, BATCH)))
        state = assigner.state
        print(f"  live clusters {len(state.ids)}, outliers {state.outliers_total}", flush=True)
        rec = await recompute_under_trickle(store, assigner, traffic)
        clock = time.perf_counter()
        assigner.close()  # as serve's shutdown does at SIGTERM: the state saved for a restart
        rec["save_s"] = time.perf_counter() - clock
        return rates, rec
    finally:
        store.close()


def run(n: int, path: Path) -> None:
    """Fill, time a recompute under a trickle, close; reopen in a fresh process."""
    traffic = Traffic()
    rates, rec = asyncio.run(fill_and_recompute(n, path, traffic))
    dim = str(traffic.vectors.shape[1])
    seconds = []
    for how in ([], ["--crashed"]):  # the clean close's state first: taking it deletes it
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_million",
                "--reopen",
                str(path),
                "--dim",
                dim,
                *how,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        lines = out.stdout.strip().splitlines()
        print(lines[0])
        seconds.append(float(lines[-1]))
    print("\n".join(table(n, rates, rec, (seconds[0], seconds[1]))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--path", type=Path, default=Path("/tmp/kura-million"))
    parser.add_argument("--keep", action="store_true", help="leave the store on disk")
    parser.add_argument("--reopen", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--crashed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit_blas_threads()
    if args.reopen:
        print(f"{reopen(args.reopen, args.dim, crashed=args.crashed):.3f}")
        return
    shutil.rmtree(args.path, ignore_errors=True)
    print(f"{datetime.now(UTC):%H:%M} UTC, N = {args.n:,}, store at {args.path}", flush=True)
    try:
        run(args.n, args.path)
    finally:
        if not args.keep:
            shutil.rmtree(args.path, ignore_errors=True)


if __name__ == "__main__":
    main()
