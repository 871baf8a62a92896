"""Roles that scale out: `serve --role ingest` processes beside one `--role assign` process.

On the real Kafka broker, static embedder, offline summaries, embedded store, N MultiWOZ
user turns (as one-turn conversations, produced as fast as possible), each layout on fresh
topics and a fresh store:

- all:         one `serve --role all` process (today's default),
- 1 ingest:    one `--role assign` process + one `--role ingest` process,
- 2 ingest:    one `--role assign` process + two `--role ingest` processes,
- assigner ceiling: one `--role assign` process is started, then paused (SIGSTOP) while two
  ingest processes fill the embedded topic and stop; it resumes and drains the topic alone:
  its own rate, from its first assignment to its last (start-up left out), the most any
  number of ingest workers can reach.

For each: conversations/s from the first produce to the last first assignment, the sustained
rate (between the 10th and the 90th percentile of assignment times), the speed-up over one
ingest process (and over the one process), and each process's CPU (seconds, and cores: CPU
seconds / wall seconds). conv/CPU-s is N over the CPU seconds of the process that assigns: what
it could reach with a core of its own if it never waited on the broker or the store.

    .venv/bin/python -m bench.bench_roles [--n 20000] [--layouts all,1,2,ceiling] [--rounds 1]
Uses KURA_KAFKA_BOOTSTRAP when set, else starts its own broker on free ports. The topics
have KURA_KAFKA_PARTITIONS partitions (default 4); each ingest process runs
KURA_SERVICE_SUMMARISE_CONSUMERS consumers (default 2), so two of them cover 4 partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.bench_broker import bench_broker
from bench.bench_throughput import _assignments, _conversations, _produce
from kura_stream.adapters.kafka_client import topic_record_count
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.settings import Settings
from kura_stream.types import Conversation
from tests.integration.service_harness import ServiceUnderTest, wait_for

WAIT_S = 1800.0
"""Longest wait for a layout to assign everything."""
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    """One layout's figures."""

    layout: str
    n: int
    rate: float
    sustained: float
    cpu: dict[str, float]
    """CPU seconds per process (role and index), over the measured run."""
    wall: float


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _cpu_now(procs: dict[str, ServiceUnderTest]) -> dict[str, float]:
    return {name: _cpu_s(svc.proc.pid) for name, svc in procs.items() if svc.proc is not None}


@contextmanager
def _running(
    bootstrap: str, workdir: Path, roles: list[str], tag: str | None = None
) -> Iterator[dict[str, ServiceUnderTest]]:
    """Start one `serve` process per role (same topics, group and store), stop them after."""
    tag = tag or uuid.uuid4().hex[:8]
    workdir.mkdir(parents=True, exist_ok=True)
    procs = {
        f"{role}-{i}": ServiceUnderTest(
            bootstrap=bootstrap, workdir=workdir, tag=tag, serve_args=("--role", role)
        )
        for i, role in enumerate(roles)
    }
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            for started in [pool.submit(svc.start, 300) for svc in procs.values()]:
                started.result()
        yield procs
    finally:
        for svc in procs.values():
            svc.stop()


def _reader(procs: dict[str, ServiceUnderTest]) -> ServiceUnderTest:
    """The process that holds the store (answers /status)."""
    return next(s for s in procs.values() if s.serve_args[-1] in ("all", "assign"))


async def _layout(
    name: str, roles: list[str], convs: list[Conversation], bootstrap: str, workdir: Path
) -> Result:
    """Produce N into a fresh layout of processes and time them until all are assigned."""
    n = len(convs)
    with _running(bootstrap, workdir / name, roles) as procs:
        reader = _reader(procs)
        cpu0, t0 = _cpu_now(procs), time.time()
        await _produce(reader, convs)
        wait_for(lambda: reader.get("/status")["conversations"] >= n, WAIT_S, f"{name}: not all")
        cpu1, wall = _cpu_now(procs), time.time() - t0
        placed = await _assignments(reader, n)
    times = [at for at, _ in placed.values()]
    t10, t90 = np.percentile(times, [10, 90])
    return Result(
        layout=name,
        n=n,
        rate=n / (max(times) - t0),
        sustained=0.8 * n / (t90 - t10),
        cpu={k: cpu1[k] - cpu0[k] for k in cpu1},
        wall=wall,
    )


async def _ceiling(convs: list[Conversation], bootstrap: str, workdir: Path) -> Result:
    """The assign process alone, draining an embedded topic filled while it was stopped.

    It starts first (so start-up is out of its CPU count) and is stopped (SIGSTOP) while two
    ingest processes fill the embedded topic; they stop, it continues (SIGCONT) and drains.
    """
    n, tag = len(convs), uuid.uuid4().hex[:8]
    with _running(bootstrap, workdir / "ceiling", ["assign"], tag=tag) as procs:
        reader = _reader(procs)
        assert reader.proc is not None
        os.kill(reader.proc.pid, signal.SIGSTOP)
        try:
            await _fill_embedded(convs, bootstrap, workdir, tag)
        finally:
            cpu0 = _cpu_now(procs)
            os.kill(reader.proc.pid, signal.SIGCONT)
        wait_for(lambda: reader.get("/status")["conversations"] >= n, WAIT_S, "ceiling: not all")
        cpu1 = _cpu_now(procs)
        placed = await _assignments(reader, n)
    times = [at for at, _ in placed.values()]
    t10, t90 = np.percentile(times, [10, 90])
    wall = max(times) - min(times)
    return Result(
        layout="assigner alone (ceiling)",
        n=n,
        rate=n / wall,
        sustained=0.8 * n / (t90 - t10),
        cpu={k: cpu1[k] - cpu0[k] for k in cpu1},
        wall=wall,
    )


async def _fill_embedded(
    convs: list[Conversation], bootstrap: str, workdir: Path, tag: str
) -> None:
    """Two ingest processes summarise and embed convs into the embedded topic, then stop."""
    with _running(bootstrap, workdir / "ceiling", ["ingest", "ingest"], tag=tag) as ingest:
        first = next(iter(ingest.values()))
        await _produce(first, convs)
        topic, deadline = first.env["KURA_KAFKA_TOPIC_EMBEDDED"], time.monotonic() + WAIT_S
        while await topic_record_count(bootstrap, topic) < len(convs):
            if time.monotonic() > deadline:
                raise AssertionError("the embedded topic did not fill")
            await asyncio.sleep(0.5)


LAYOUTS = {
    "all": ("one process, --role all", ["all"]),
    "1": ("assign + 1 ingest", ["assign", "ingest"]),
    "2": ("assign + 2 ingest", ["assign", "ingest", "ingest"]),
}


def _header(n: int) -> str:
    settings = Settings()
    return (
        f"== {n} MultiWOZ turns, static embedder, offline, embedded store; "
        f"{settings.kafka.partitions} partitions, {settings.service.summarise_consumers} "
        f"summarise consumers per ingest process; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} now"
    )


def _ratios(results: list[Result]) -> dict[str, tuple[float, float]]:
    """Each layout's rate over the `all` layout's and over one ingest process's, same round."""
    base = {
        key: next((r.rate for r in results if r.layout == LAYOUTS[key][0]), 0.0) for key in LAYOUTS
    }
    nan = float("nan")
    return {
        r.layout: (
            r.rate / base["all"] if base["all"] else nan,
            r.rate / base["1"] if base["1"] else nan,
        )
        for r in results
    }


def _print(results: list[Result], n: int) -> None:
    print(f"\n{_header(n)}")
    ratios = _ratios(results)
    head = ("layout", "conv/s", "sustained", "x all", "x 1 ingest", "conv/CPU-s")
    print("{:26} {:>7} {:>9} {:>6} {:>10} {:>10}  CPU s (cores)".format(*head))
    for r in results:
        x_all, x_one = ratios[r.layout]
        reader = next(v for k, v in r.cpu.items() if not k.startswith("ingest")) or float("nan")
        cpu = ", ".join(f"{k} {v:.1f} ({v / r.wall:.2f})" for k, v in r.cpu.items())
        print(
            f"{r.layout:26} {r.rate:7.0f} {r.sustained:9.0f} {x_all:5.2f}x {x_one:9.2f}x "
            f"{r.n / reader:10.0f}  {cpu}"
        )


def _print_medians(rounds: list[list[Result]]) -> None:
    """Per layout: the median rate, and the median of its same-round ratios."""
    print(f"\n== medians over {len(rounds)} rounds (ratios taken within each round)")
    print("{:26} {:>7} {:>6} {:>10}".format("layout", "conv/s", "x all", "x 1 ingest"))
    per_round = [_ratios(results) for results in rounds]
    for r in rounds[0]:
        rates = [x.rate for results in rounds for x in results if x.layout == r.layout]
        x_all = float(np.median([ratios[r.layout][0] for ratios in per_round]))
        x_one = float(np.median([ratios[r.layout][1] for ratios in per_round]))
        print(f"{r.layout:26} {float(np.median(rates)):7.0f} {x_all:5.2f}x {x_one:9.2f}x")


async def run(n: int, layouts: list[str], rounds: int, bootstrap: str, workdir: Path) -> None:
    convs, _ = _conversations(n)
    done: list[list[Result]] = []
    for round_no in range(rounds):
        results = []
        for key in layouts:
            where = workdir / f"round-{round_no}"
            if key == "ceiling":
                results.append(await _ceiling(convs, bootstrap, where))
            else:
                name, roles = LAYOUTS[key]
                results.append(await _layout(name, roles, convs, bootstrap, where))
            print(f"done: {results[-1].layout} {results[-1].rate:.0f}/s", flush=True)
        _print(results, n)
        done.append(results)
    if rounds > 1:
        _print_medians(done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--layouts", default="all,1,2,ceiling")
    parser.add_argument("--rounds", type=int, default=1, help="Repeat; medians at the end.")
    args = parser.parse_args()
    limit_blas_threads()
    with tempfile.TemporaryDirectory() as tmp, bench_broker(Path(tmp)) as bootstrap:
        asyncio.run(run(args.n, args.layouts.split(","), args.rounds, bootstrap, Path(tmp)))


if __name__ == "__main__":
    main()
