"""Insight quality on labeled public sets of several shapes, next to plain k-means.

One table, one row per set (offline path, MiniLM by default):
- kmeans: scikit-learn k-means at the true k on the embedder's vectors of the raw user text
  (mean AMI over --seeds seeds, as for the batch figures: one seed's AMI varies by +-0.03);
- batch =k / kura / auto: kura-stream's batch clustering (offline digests) at the true k, at
  Kura's k (n/10) and at the k it chooses itself (the default), AMI each;
- top: the hierarchy's top level over the auto clusters (AMI, and how many clusters);
- stream: the service's assigner and recompute schedule replayed at --rate conversations/s
  into a fresh embedded store: outliers among arrivals after --warm-up, arrival AMI of those,
  final AMI after the service's own recomputes;
- names: top-1 / top-5, the share of members whose own cluster's name is nearest their text
  among all names; topic, the share of clusters whose name is nearest their majority topic.
Settings were chosen on multiwoz and chatterbot; trec, 20newsgroups, reuters52 and chitchat
are the sets they are reported on.

    .venv/bin/python -m bench.bench_quality_suite [--sets trec,20newsgroups] [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import numpy as np

from bench.quality_parts import (
    TOPIC_NAMES,
    LabeledData,
    NameScores,
    StreamResult,
    kmeans_labels,
    load,
    name_scores,
    replay,
    scores,
)
from kura_stream.adapters.embedders import make_embedder
from kura_stream.adapters.embedders.memo import MemoEmbedder
from kura_stream.api import KMEANS_RESTARTS
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.settings import EmbedderSettings, Settings
from kura_stream.stages.choose_k import base_k
from kura_stream.stages.cluster import kmeans_clusters
from kura_stream.stages.hierarchy import build_hierarchy
from kura_stream.stages.name import base_clusters, groups_from_labels, name_clusters
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.stages.offline_summary import OfflineSummariser

TUNING_SETS = ("multiwoz", "chatterbot")
REPORT_SETS = ("trec", "20newsgroups", "reuters52", "chitchat")


@dataclass
class Row:
    """One set's figures."""

    name: str
    n: int
    k: int
    kmeans: float
    batch_equal: float
    batch_kura: float
    batch_auto: float
    auto_k: int
    top: float
    top_k: int
    stream: StreamResult | None
    names: NameScores
    seconds: float


async def evaluate(data: LabeledData, embedder: MemoEmbedder, args: argparse.Namespace) -> Row:
    """Every figure of one set."""
    started = time.perf_counter()
    summaries = await OfflineSummariser(embedder=embedder).summarise_batch(data.conversations)
    vectors = embedder.embed([s.embedding_text() for s in summaries])
    raw = embedder.embed(data.user_texts)
    gold = data.labels
    seeds = range(args.seeds)

    def mean_ami(k: int | None, on: np.ndarray) -> float:
        runs = [kmeans_clusters(on, k=k, n_init=KMEANS_RESTARTS, seed=seed) for seed in seeds]
        return float(np.mean([scores(gold, list(labels))[0] for labels in runs]))

    kmeans = float(np.mean([scores(gold, kmeans_labels(raw, data.k, seed))[0] for seed in seeds]))
    equal, kura = mean_ami(data.k, vectors), mean_ami(None, vectors)
    auto_k = base_k(vectors)
    auto = mean_ami(auto_k, vectors)
    auto_labels = kmeans_clusters(vectors, k=auto_k, n_init=KMEANS_RESTARTS)

    groups = groups_from_labels(summaries, vectors, auto_labels)
    named = await name_clusters(groups, namer=OfflineClusterNamer())
    clusters, centroids = base_clusters(groups, named)
    hierarchy = await build_hierarchy(
        clusters, centroids, namer=OfflineParentNamer(), embed=embedder.embed, grouping="centroids"
    )
    parent = {c.id: c.parent_id for c in hierarchy.clusters}
    row_of = {s.chat_id: i for i, s in enumerate(summaries)}
    members = {g.cluster_id: [row_of[s.chat_id] for s in g.members] for g in groups}
    top_of: dict[int, str] = {}
    for cluster_id, rows in members.items():
        top = cluster_id
        while parent.get(top):
            top = str(parent[top])
        top_of.update(dict.fromkeys(rows, top))
    top_ami = scores(gold, [top_of[i] for i in range(len(gold))])[0]
    names = name_scores(
        {c.id: c.name for c in clusters},
        members,
        raw,
        gold,
        TOPIC_NAMES.get(data.name),
        embedder,
    )
    stream = None
    if not args.no_stream:
        stream = await replay(
            summaries,
            vectors,
            gold,
            namer=OfflineClusterNamer(),
            parent_namer=OfflineParentNamer(),
            embedder=embedder,
            rate=args.rate,
            warm_up=args.warm_up,
        )
    return Row(
        data.name,
        len(gold),
        data.k,
        kmeans,
        equal,
        kura,
        auto,
        auto_k,
        top_ami,
        len(set(top_of.values())),
        stream,
        names,
        time.perf_counter() - started,
    )


def print_row(row: Row) -> None:
    """One line of the table, then the largest clusters' names."""
    s = row.stream
    stream = (
        f"{100 * s.outlier_share:5.1f}% {s.arrival_ami:6.3f} {s.final_ami:6.3f} {s.clusters:4d}"
        if s
        else " " * 26
    )
    topic = f"{row.names.topic:5.2f}" if row.names.topic is not None else "    -"
    print(
        f"{row.name:13} {row.n:5d} {row.k:3d} {row.kmeans:6.3f} {row.batch_equal:6.3f} "
        f"{row.batch_kura:6.3f} {row.batch_auto:6.3f} {row.auto_k:4d} {row.top:6.3f} "
        f"{row.top_k:3d} {stream} {row.names.top1:5.2f} {row.names.top5:5.2f} {topic} "
        f"{row.seconds:5.0f}",
        flush=True,
    )
    print("    names: " + " | ".join(row.names.examples), flush=True)


HEADER = (
    f"{'set':13} {'n':>5} {'k':>3} {'kmeans':>6} {'b=k':>6} {'b kura':>6} {'b auto':>6} "
    f"{'autok':>4} {'top':>6} {'#t':>3} {'outl':>6} {'arrAMI':>6} {'final':>6} {'#cl':>4} "
    f"{'top1':>5} {'top5':>5} {'topic':>5} {'secs':>5}"
)


def main() -> None:
    """Print the table for the chosen sets."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default=",".join(TUNING_SETS + REPORT_SETS))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--warm-up", type=int, default=500)
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--seeds", type=int, default=3, help="k-means and batch: mean of seeds")
    args = parser.parse_args()
    limit_blas_threads()
    settings = Settings(embedder=EmbedderSettings.model_validate({"kind": args.embedder}))
    embedder = MemoEmbedder(make_embedder(settings), size=200_000)
    print(f"embedder {embedder.name}; AMI unless said; tuning sets: {', '.join(TUNING_SETS)}")
    print(HEADER, flush=True)
    for name in args.sets.split(","):
        np.random.seed(0)
        print_row(asyncio.run(evaluate(load(name, args.n), embedder, args)))


if __name__ == "__main__":
    main()
