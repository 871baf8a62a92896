"""Embedder throughput: sentences/s, load time and memory of each local embedder.

Usage:
    .venv/bin/python -m bench.bench_embedders               # ~2,000 sentences, every config
    .venv/bin/python -m bench.bench_embedders --n 500 --repeats 1

Two corpora of real user texts, loaded by kura_stream.datasets: "short" is chatterbot-corpus
(de-duplicated) topped up with MultiWOZ user utterances, about 9 words each; "summary" is the
first user message of ShareGPT conversations cut to 64 words, about the size of a summary.
Each config runs in its own process, so load time and RSS are that embedder's alone: RSS after
loading, and the peak while embedding. Throughput is the best of --repeats passes over all
texts in one embed() call, after a warm-up call. Needs `kura-stream models fetch` first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from kura_stream.adapters.embedders import make_embedder
from kura_stream.datasets import load_chatterbot, load_multiwoz, load_sharegpt_conversations
from kura_stream.settings import Settings

CONFIGS: dict[str, dict[str, Any]] = {
    "minilm, 1 thread": {"kind": "minilm", "threads": 1},
    "minilm, 2 threads": {"kind": "minilm", "threads": 2},
    "static (model2vec)": {"kind": "static"},
}


def summary_sized(n: int, words: int = 64) -> list[str]:
    texts: list[str] = []
    for conv in load_sharegpt_conversations(2 * n):
        first = next((m.content for m in conv.messages if m.role == "user"), "")
        cut = " ".join(first.split()[:words])
        if cut and len(texts) < n:
            texts.append(cut)
    return texts


def short_sentences(n: int) -> list[str]:
    texts = [t.text for t in load_chatterbot()]
    seen = set(texts)
    for item in load_multiwoz(limit=4 * n, seed=0):
        if len(texts) >= n:
            break
        if item.text not in seen:
            seen.add(item.text)
            texts.append(item.text)
    return texts[:n]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


CORPORA = {"short": short_sentences, "summary": summary_sized}


def run_one(config: str, n: int, repeats: int) -> list[dict[str, Any]]:
    corpora = {name: load(n) for name, load in CORPORA.items()}
    base = rss_mb()
    settings = Settings()
    embedder_settings = settings.embedder.model_copy(update=CONFIGS[config])
    started = time.perf_counter()
    embedder = make_embedder(settings.model_copy(update={"embedder": embedder_settings}))
    load_s = time.perf_counter() - started
    loaded = rss_mb()
    rows = []
    for corpus, texts in corpora.items():
        embedder.embed(texts[:64])  # warm-up: first-run allocations, lazy initialisation
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            vectors = embedder.embed(texts)
            best = min(best, time.perf_counter() - started)
        rows.append(
            {
                "config": config,
                "corpus": corpus,
                "name": embedder.name,
                "n": len(texts),
                "words": sum(len(t.split()) for t in texts) / len(texts),
                "dim": int(vectors.shape[1]),
                "load_s": load_s,
                "rate": len(texts) / best,
                "rss_base_mb": base,
                "rss_loaded_mb": loaded,
                "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sentences to embed")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the best one counts")
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.n, args.repeats)))
        return
    rows = []
    for config in CONFIGS:
        command = [sys.executable, "-m", "bench.bench_embedders", "--one", config]
        command += ["--n", str(args.n), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    for corpus in CORPORA:
        first = next(r for r in rows if r["corpus"] == corpus)
        print(f"{corpus}: {first['n']} texts, {first['words']:.1f} words on average")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    header = (
        f"{'config':<20} {'corpus':<8} {'dim':>4} {'sentences/s':>12} {'load s':>7} "
        f"{'RSS before MB':>14} {'after load':>11} {'peak':>6}  name"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['config']:<20} {r['corpus']:<8} {r['dim']:>4} {r['rate']:>12,.0f} "
            f"{r['load_s']:>7.2f} "
            f"{r['rss_base_mb']:>14.0f} {r['rss_loaded_mb']:>11.0f} {r['rss_peak_mb']:>6.0f}"
            f"  {r['name']}"
        )


if __name__ == "__main__":
    main()
