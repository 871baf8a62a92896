"""End-to-end throughput, latency, memory and streaming quality of `kura-stream serve`.

For each embedder (offline summariser), on the real Kafka broker:
- produces N labeled MultiWOZ user turns (as one-turn conversations) as fast as possible,
- measures conversations/s from the first produce to the last assignment, next to the
  embedder's own throughput on the same N summary texts in this process (one call, warm)
  and to the Kafka transport's own ceiling: the same messages relayed through two hops that do
  nothing else (bench/kafka_relay.py), the most any pipeline on these clients can reach,
- the sustained rate: conversations/s between the 10th and 90th percentile of assignment
  times, which leaves out the pipeline filling up and draining (about a second at each end),
- latency percentiles from produce to assignment (producer send time -> assignment time),
- the service's peak RSS (VmHWM, plus its embedding worker process's when it has one),
- single-pass quality of the live assignment (AMI, ARI, NMI; outliers as singletons) next to
  batch k-means at k = number of labels on the same embeddings, and after one recompute
  (its base clusters, and the top level of its hierarchy).

    .venv/bin/python -m bench.bench_throughput [--n 3000] [--embedders static,minilm]
Uses KURA_KAFKA_BOOTSTRAP when set, else starts its own broker on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score as ami
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.metrics import normalized_mutual_info_score as nmi

from bench.bench_broker import bench_broker
from bench.kafka_relay import relay_rate
from kura_stream.adapters.embedders import make_embedder
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.datasets import load_multiwoz
from kura_stream.settings import EmbedderSettings, Settings
from kura_stream.stages.offline_summary import OfflineSummariser
from kura_stream.types import Conversation, Message
from tests.integration.service_harness import ServiceUnderTest, wait_for


def _conversations(n: int) -> tuple[list[Conversation], list[str]]:
    items = load_multiwoz(limit=n, seed=0)
    now = datetime.now(UTC)
    convs = [
        Conversation(
            chat_id=f"mwz-{i}",
            created_at=now,
            messages=(
                Message(created_at=now, role="user", content=text),
                Message(created_at=now, role="assistant", content="Sure, let me check that."),
            ),
        )
        for i, (text, _) in enumerate(items)
    ]
    return convs, [label for _, label in items]


async def _produce(svc: ServiceUnderTest, convs: list[Conversation]) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        topic = svc.env["KURA_KAFKA_TOPIC_CONVERSATIONS"]
        futures = []
        for c in convs:
            sent_at[c.chat_id] = time.time()
            futures.append(
                await producer.send(topic, c.model_dump_json().encode(), key=c.chat_id.encode())
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent_at


async def _assignments(svc: ServiceUnderTest, n: int) -> dict[str, tuple[float, str | None]]:
    consumer = AIOKafkaConsumer(
        svc.env["KURA_KAFKA_TOPIC_ASSIGNMENTS"],
        bootstrap_servers=svc.bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    first: dict[str, tuple[float, str | None]] = {}
    final: dict[str, str | None] = {}
    try:
        deadline = time.monotonic() + 120
        while len(first) < n and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    a = json.loads(r.value)
                    at = datetime.fromisoformat(a["at"]).timestamp()
                    first.setdefault(a["chat_id"], (at, a["cluster_id"]))
                    final[a["chat_id"]] = a["cluster_id"]
    finally:
        await consumer.stop()
    return {k: (first[k][0], final[k]) for k in first}


def _scores(gold: list[str], pred: list[str]) -> str:
    return f"AMI {ami(gold, pred):.3f}  ARI {ari(gold, pred):.3f}  NMI {nmi(gold, pred):.3f}"


def _top(cluster_id: str, parents: dict[str, str | None]) -> str:
    """The top-level ancestor of a base cluster (an outlier's own label stays)."""
    while parents.get(cluster_id) is not None:
        cluster_id = str(parents[cluster_id])
    return cluster_id


def _vmhwm_mb(pid: int) -> float:
    """Peak RSS of pid plus its child processes' peaks (the embedding worker, if any)."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1]) / 1024
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += _vmhwm_mb(int(child))
    return total


async def run(kind: str, n: int, bootstrap: str, workdir: Path) -> None:
    convs, gold = _conversations(n)
    settings = Settings(embedder=EmbedderSettings.model_validate({"kind": kind}))
    embedder = make_embedder(settings)
    summariser = OfflineSummariser(embedder=embedder)
    # The texts the pipeline embeds; summarising them also warms the embedder up.
    texts = [s.embedding_text() for s in await summariser.summarise_batch(convs)]
    started = time.perf_counter()
    embedder.embed(texts)
    own = len(texts) / (time.perf_counter() - started)
    relay = await relay_rate(
        bootstrap,
        [(c.chat_id.encode(), c.model_dump_json().encode()) for c in convs],
        partitions=settings.kafka.partitions,
    )
    svc = ServiceUnderTest(bootstrap=bootstrap, workdir=workdir / kind, embedder=kind)
    svc.workdir.mkdir(parents=True)
    svc.start()
    try:
        t0 = time.time()
        sent_at = await _produce(svc, convs)
        wait_for(lambda: svc.get("/status")["conversations"] >= n, 3600, "not all assigned")
        placed = await _assignments(svc, n)
        t1 = max(at for at, _ in placed.values())
        rate = n / (t1 - t0)
        # Sustained: between the 10th and the 90th percentile of assignment times, without
        # the pipeline filling up (first batch parsed) and draining (last batch assigned).
        t10, t90 = np.percentile([at for at, _ in placed.values()], [10, 90])
        sustained = 0.8 * n / (t90 - t10)
        lat = np.array([placed[c][0] - sent_at[c] for c in placed]) * 1000
        peak = _vmhwm_mb(svc.proc.pid) if svc.proc else float("nan")
        live = [placed[c.chat_id][1] or f"outlier-{c.chat_id}" for c in convs]
        svc.recompute(timeout_s=1800)
        export = Path(svc.post("/export", json={"dir": f"export-{kind}"})["dir"])
        after = {}
        for line in (export / "assignments.jsonl").read_text().splitlines():
            row = json.loads(line)
            after[row["chat_id"]] = row["cluster_id"] or f"outlier-{row['chat_id']}"
        parents = {
            c["id"]: c["parent_id"] for c in json.loads((export / "clusters.json").read_text())
        }
        top = {chat_id: _top(cluster_id, parents) for chat_id, cluster_id in after.items()}
        status = svc.get("/status")
    finally:
        svc.stop()
    vectors = embedder.embed([c.messages[0].content for c in convs])
    k = len(set(gold))
    km = [str(x) for x in KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)]
    print(f"\n== embedder {kind}, offline summaries, {n} MultiWOZ turns, {k} labels")
    print(f"{'end-to-end conversations/s':34} {rate:10.1f}")
    print(f"{'embedder alone, same texts /s':34} {own:10.1f}")
    print(f"{'pipeline share of embedder speed':34} {100 * rate / own:9.0f}%")
    print(f"{'sustained (p10-p90 assigned) /s':34} {sustained:10.1f}")
    print(f"{'sustained share of embedder speed':34} {100 * sustained / own:9.0f}%")
    print(f"{'Kafka relay alone, 2 bare hops /s':34} {relay:10.1f}")
    print(f"{'pipeline share of the relay':34} {100 * rate / relay:9.0f}%")
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(f"{'latency p50 / p95 / p99 ms':34} {p50:8.0f} / {p95:.0f} / {p99:.0f}")
    print(f"{'service peak RSS MB (+ workers)':34} {peak:10.0f}")
    print(f"{'clusters / outliers at the end':34} {status['clusters']:>6} / {status['outliers']}")
    print(f"{'live single pass':34} {_scores(gold, live)}")
    print(f"{'after one recompute':34} {_scores(gold, [after[c.chat_id] for c in convs])}")
    tops = [top[c.chat_id] for c in convs]
    print(f"{f'  its top level ({len(set(tops))} clusters)':34} {_scores(gold, tops)}")
    print(f"{'batch k-means, k = labels':34} {_scores(gold, km)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--embedders", default="static,minilm")
    args = parser.parse_args()
    limit_blas_threads()
    with tempfile.TemporaryDirectory() as tmp, bench_broker(Path(tmp)) as bootstrap:
        for kind in args.embedders.split(","):
            asyncio.run(run(kind, args.n, bootstrap, Path(tmp)))


if __name__ == "__main__":
    main()
