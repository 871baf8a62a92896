"""The LLM path against an endpoint of fixed latency: kura-stream serve and batch next to Kura 0.5.

Issue #16, target 2. An OpenAI-compatible endpoint (bench/fixed_latency_llm.py, its own
process) answers a valid instance of any requested schema after a fixed latency, optionally
failing a share of calls with HTTP 500. For each latency variant and concurrency c it times,
on the same ShareGPT conversations:
- `kura-stream serve` (not --offline, static embedder) through a private Kafka broker: from
  the first produce to the last assignment; KURA_LLM_CONCURRENCY=c,
- `kura-stream batch` with the LLM at the same concurrency: its summarise stage (and the
  whole run, which also names clusters with the LLM),
- Kura 0.5's `summarise_conversations` (SummaryModel(max_concurrent_requests=c)), installed by
  this benchmark in its own venv under .cache/bench/kura-venv,
and prints conversations/s next to the target 0.8 x c / latency. The LLM namers of serve and
batch call the same endpoint; their calls are counted apart from the summaries.

    .venv/bin/python -m bench.bench_llm_path [--latencies 0.5,2,0.5:0.1] [--concurrency 1,8,32]
        [--systems serve,batch,kura] [--n 0] [--duration 20]
A latency "0.5:0.1" is 0.5 s with 10% of calls failing. --n 0 sizes each run to last about
--duration seconds at the target rate (at least 40 conversations).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.bench_throughput import _assignments, _produce
from bench.fixed_latency_llm import FixedLatencyLLM
from kura_stream.adapters.kafka_server import LocalKafkaServer
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.settings import Settings
from kura_stream.types import Conversation
from tests.fixtures_kafka import local_broker_config
from tests.integration.service_harness import ServiceUnderTest, wait_for

KURA_VERSION = "0.5.4"
"""The Kura 0.5 release compared against (the newest 0.5.x on PyPI when this was written)."""

MODEL = "fixed-latency"
"""The model name sent to the endpoint (it answers any)."""

KURA_SCRIPT = """
import asyncio, json, sys, time
from kura.summarisation import SummaryModel, summarise_conversations
from kura.types import Conversation

path, model, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path) as fh:
    conversations = [Conversation(**json.loads(line)) for line in fh]
summary_model = SummaryModel(model="openai/" + model, max_concurrent_requests=concurrency)
started = time.perf_counter()
out = asyncio.run(summarise_conversations(conversations, model=summary_model))
print(json.dumps({"n": len(out), "seconds": time.perf_counter() - started}))
"""


@dataclass(frozen=True)
class Variant:
    """One endpoint: a fixed latency, and the share of calls answered HTTP 500."""

    latency_s: float
    fail_rate: float = 0.0

    @property
    def label(self) -> str:
        """E.g. "0.5s" or "0.5s, 10% fail"."""
        fail = f", {self.fail_rate:.0%} fail" if self.fail_rate else ""
        return f"{self.latency_s:g}s{fail}"


@dataclass
class Result:
    """One system's run at one variant and concurrency."""

    variant: Variant
    concurrency: int
    system: str
    n: int
    seconds: float
    llm: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Conversations per second."""
        return self.n / self.seconds if self.seconds > 0 else float("nan")

    @property
    def target(self) -> float:
        """0.8 x concurrency / latency."""
        return 0.8 * self.concurrency / self.variant.latency_s


def parse_variants(spec: str) -> list[Variant]:
    """ "0.5,2,0.5:0.1" -> 0.5 s, 2 s, and 0.5 s with 10% of calls failing."""
    out = []
    for part in spec.split(","):
        latency, _, fail = part.partition(":")
        out.append(Variant(float(latency), float(fail or 0)))
    return out


def size_for(variant: Variant, concurrency: int, duration_s: float, n: int) -> int:
    """Conversations for one run: n, or enough for about duration_s at the target rate."""
    if n:
        return n
    return max(40, round(0.8 * concurrency / variant.latency_s * duration_s))


def _summary_calls(stats: dict[str, Any]) -> tuple[int, int, int]:
    """(summary calls, other calls, most summary calls in flight) from the endpoint's stats."""
    requests, peak = stats["requests"], stats["max_in_flight"]
    summaries = sum(v for k, v in requests.items() if k in ("ClioFacets", "GeneratedSummary"))
    peak_summaries = max(
        (v for k, v in peak.items() if k in ("ClioFacets", "GeneratedSummary")), default=0
    )
    return summaries, requests.get("all", 0) - summaries, peak_summaries


def _summarise_batches(metrics: str) -> tuple[int, float]:
    """(batches, seconds in all) of the summarise consumers, from the service's /metrics."""
    found = {}
    for part in ("count", "sum"):
        match = re.search(rf'kura_batch_seconds_{part}{{stage="summarise"}} ([\d.e+]+)', metrics)
        found[part] = float(match.group(1)) if match else 0.0
    return int(found["count"]), found["sum"]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _llm_env(llm: FixedLatencyLLM, concurrency: int) -> dict[str, str]:
    return {
        "KURA_LLM_BASE_URL": llm.base_url,
        "KURA_LLM_MODEL": MODEL,
        "KURA_LLM_CONCURRENCY": str(concurrency),
        "KURA_EMBEDDER_KIND": "static",
    }


async def run_serve(
    llm: FixedLatencyLLM,
    convs: list[Conversation],
    concurrency: int,
    *,
    bootstrap: str,
    workdir: Path,
    extra_env: dict[str, str],
) -> tuple[float, list[str]]:
    """Seconds from the first produce to the last assignment, and notes (CPU, dead letters)."""
    svc = ServiceUnderTest(
        bootstrap=bootstrap,
        workdir=workdir,
        offline=False,
        extra_env={**_llm_env(llm, concurrency), **extra_env},
    )
    svc.workdir.mkdir(parents=True)
    svc.start()
    assert svc.proc is not None
    try:
        llm.reset()
        cpu0, t0 = _cpu_seconds(svc.proc.pid), time.time()
        await _produce(svc, convs)
        n = len(convs)

        def done() -> bool:
            status = svc.get("/status")
            return int(status["conversations"]) + int(status["dlq"]) >= n

        wait_for(done, 1800, "not all conversations assigned or dead-lettered")
        wall = time.time() - t0
        status = svc.get("/status")
        placed = await _assignments(svc, int(status["conversations"]))
        t1 = max(at for at, _ in placed.values())
        cpu = _cpu_seconds(svc.proc.pid) - cpu0
        metrics = await asyncio.to_thread(httpx.get, f"{svc.url}/metrics", timeout=30)
        batches, batch_s = _summarise_batches(metrics.text)
    finally:
        svc.stop()
    notes = [
        f"service CPU {cpu / wall:.0%} of a core",
        f"{batches} summarise batches, mean {n / max(1, batches):.0f} records"
        f" in {batch_s / max(1, batches):.1f}s",
        f"clusters {status['clusters']}",
    ]
    if status["dlq"]:
        notes.append(f"{status['dlq']} dead letters")
    return t1 - t0, notes


def run_batch(
    llm: FixedLatencyLLM, path: Path, concurrency: int, workdir: Path
) -> tuple[float, list[str]]:
    """Seconds of `kura-stream batch`'s summarise stage, and notes (whole run, failures)."""
    env = {
        **os.environ,
        **_llm_env(llm, concurrency),
        "KURA_CACHE_DIR": str(workdir / "cache"),  # a fresh summary cache: no hits
        "COLUMNS": "400",
    }
    llm.reset()
    started = time.perf_counter()
    args = [sys.executable, "-m", "kura_stream", "batch", str(path), "--out", str(workdir / "out")]
    proc = subprocess.run(
        [*args, "--format", "jsonl"], env=env, capture_output=True, text=True, check=False
    )
    whole = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"batch failed ({proc.returncode}): {proc.stderr[-2000:]}")
    seconds, failed = batch_outcome(proc.stderr)
    notes = [f"whole batch {whole:.1f}s incl. start-up, clustering, LLM names"]
    if failed:
        notes.append(f"{failed} not summarised")
    return seconds, notes


def batch_outcome(stderr: str) -> tuple[float, int]:
    """(seconds of the summarise stage, conversations not summarised) from `batch`'s output.

    Read from the run's own line ("256 summarised, 0 failed, ...; 39.0s (summarise 13.5s,
    ..."), not from a retry's log line: "attempt 1/4 failed" once read as 4 not summarised.
    """
    line = re.search(r"^\d+ summarised, (\d+) failed, .*\(summarise ([\d.]+)s", stderr, re.M)
    if line is None:
        raise RuntimeError(f"batch printed no summary line: {stderr[-2000:]}")
    return float(line.group(2)), int(line.group(1))


def kura_python(cache_dir: Path) -> Path:
    """The Python of a venv holding Kura KURA_VERSION, created on first use."""
    venv = cache_dir / "bench" / "kura-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('kura'))"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.stdout.strip() == KURA_VERSION:
            return python
    print(f"installing kura=={KURA_VERSION} into {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", f"kura=={KURA_VERSION}"]
    subprocess.run(pip, check=True)
    return python


def run_kura(
    llm: FixedLatencyLLM, python: Path, path: Path, concurrency: int, workdir: Path
) -> tuple[float, list[str]]:
    """Seconds of Kura 0.5's summarise_conversations over the file, timed inside its process."""
    script = workdir / "kura_summarise.py"
    script.write_text(KURA_SCRIPT)
    env = {**os.environ, "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "bench"}
    llm.reset()
    proc = subprocess.run(
        [str(python), str(script), str(path), MODEL, str(concurrency)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return float("nan"), [f"failed: {reason[0][:120]}"]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["seconds"]), []


@dataclass
class Bench:
    """What every run shares: the conversations, the broker, the Kura venv, a work folder."""

    conversations: list[Conversation]
    workdir: Path
    bootstrap: str | None
    kura: Path | None
    serve_env: dict[str, str]
    runs: int = 0

    def run(self, variant: Variant, concurrency: int, system: str, n: int) -> Result:
        """One system's run; the endpoint's counts are taken right after it."""
        self.runs += 1
        work = self.workdir / f"run-{self.runs}-{system}"
        work.mkdir(parents=True)
        convs = self.conversations[:n]
        path = work / "conversations.jsonl"
        path.write_text("".join(c.model_dump_json() + "\n" for c in convs))
        with FixedLatencyLLM(variant.latency_s, variant.fail_rate, seed=self.runs) as llm:
            if system == "serve":
                assert self.bootstrap is not None
                seconds, notes = asyncio.run(
                    run_serve(
                        llm,
                        convs,
                        concurrency,
                        bootstrap=self.bootstrap,
                        workdir=work / "svc",
                        extra_env=self.serve_env,
                    )
                )
            elif system == "batch":
                seconds, notes = run_batch(llm, path, concurrency, work)
            else:
                assert self.kura is not None
                seconds, notes = run_kura(llm, self.kura, path, concurrency, work)
            stats = llm.stats()
        return Result(variant, concurrency, system, len(convs), seconds, stats, notes)


NAMES = {"serve": "kura-stream serve", "batch": "kura-stream batch", "kura": "Kura 0.5.4"}


def print_row(r: Result) -> None:
    """One line of the table, printed as soon as the run ends."""
    summaries, other, peak = _summary_calls(r.llm)
    mean = float(r.llm.get("mean_in_flight", 0.0))
    verdict = "pass" if r.rate >= r.target else "miss"
    print(
        f"{r.variant.label:>15} {r.concurrency:>4} {NAMES[r.system]:<18} {r.n:>5} "
        f"{r.seconds:>8.1f} {r.rate:>8.2f} {r.target:>7.2f} {verdict:>5} "
        f"{summaries:>5}/{other:<4} {peak:>4}/{mean:<4.1f} {'; '.join(r.notes)}",
        flush=True,
    )


HEADER = (
    f"{'endpoint':>15} {'conc':>4} {'system':<18} {'n':>5} {'seconds':>8} {'conv/s':>8} "
    f"{'target':>7} {'':>5} {'calls s/other':>10} {'peak/mean':>9} notes"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="0.5,2,0.5:0.1", help="LATENCY[:FAIL_RATE],...")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--systems", default="serve,batch,kura")
    parser.add_argument("--n", type=int, default=0, help="conversations per run (0: sized)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per sized run")
    parser.add_argument(
        "--summarise-consumers", type=int, default=0, help="KURA_SERVICE_SUMMARISE_CONSUMERS"
    )
    parser.add_argument("--max-records", type=int, default=0, help="KURA_KAFKA_BATCH_MAX_RECORDS")
    args = parser.parse_args()
    variants = parse_variants(args.latencies)
    levels = [int(c) for c in args.concurrency.split(",")]
    systems = args.systems.split(",")
    sizes = [size_for(v, c, args.duration, args.n) for v in variants for c in levels]
    settings = Settings()
    serve_env = {}
    if args.summarise_consumers:
        serve_env["KURA_SERVICE_SUMMARISE_CONSUMERS"] = str(args.summarise_consumers)
    if args.max_records:
        serve_env["KURA_KAFKA_BATCH_MAX_RECORDS"] = str(args.max_records)
    kura = kura_python(settings.cache_dir) if "kura" in systems else None
    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        bootstrap = os.environ.get("KURA_KAFKA_BOOTSTRAP")
        if "serve" in systems and not bootstrap:
            broker = LocalKafkaServer(local_broker_config(Path(tmp) / "kafka"))
            bootstrap = broker.start().bootstrap
        bench = Bench(
            load_sharegpt_conversations(max(sizes)), Path(tmp), bootstrap, kura, serve_env
        )
        print("conversations/s on ShareGPT; target = 0.8 x concurrency / latency;")
        print("calls s/other = summary / other (namer) calls to the endpoint, retries included;")
        print(
            "peak/mean = most summary calls in flight at once / mean calls in flight (all calls)\n"
        )
        print(HEADER)
        try:
            for variant in variants:
                for c in levels:
                    for system in systems:
                        print_row(
                            bench.run(
                                variant, c, system, size_for(variant, c, args.duration, args.n)
                            )
                        )
        finally:
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    main()
