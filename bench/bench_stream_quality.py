"""Single-pass streaming clustering quality vs batch k-means, on labeled public data.

Prints, per embedder and dataset, for a grid of thresholds: clusters formed, outliers, and
AMI / ARI / NMI of the final assignment (outliers as their own label) next to batch k-means
at k = number of labels on the same vectors.

    .venv/bin/python -m bench.bench_stream_quality [--embedders static,minilm] [--limit 3000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score as ami
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.metrics import normalized_mutual_info_score as nmi

from kura_stream.adapters.embedders import make_embedder
from kura_stream.bootstrap import limit_blas_threads
from kura_stream.datasets import load_chatterbot, load_multiwoz
from kura_stream.settings import EmbedderSettings, Settings
from kura_stream.stages.assign import AssignParams, ClusterState, assign_many


def _data(name: str, limit: int) -> tuple[list[str], list[str]]:
    items = load_chatterbot() if name == "chatterbot" else load_multiwoz(limit=limit, seed=0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(items))
    return [items[i][0] for i in order], [items[i][1] for i in order]


def _stream(vectors: np.ndarray, params: AssignParams) -> tuple[list[str], int, int, float]:
    ids = [str(i) for i in range(len(vectors))]
    started = time.perf_counter()
    items = list(zip(ids, vectors, strict=True))
    state, outcomes = assign_many(ClusterState(dim=vectors.shape[1]), items, params=params)
    seconds = time.perf_counter() - started
    final: dict[str, str] = {}
    for outcome in outcomes:
        for a in outcome.assignments:
            final[a.chat_id] = a.cluster_id or f"outlier-{a.chat_id}"
    return [final[i] for i in ids], len(state.ids), state.outliers_total, seconds


def _row(
    kind: str,
    data: str,
    method: str,
    k: int,
    outliers: int,
    gold: list[str],
    pred: list[str] | list[int],
    ms_per_1k: float | None,
) -> None:
    scores = f"{ami(gold, pred):6.3f} {ari(gold, pred):6.3f} {nmi(gold, pred):6.3f}"
    speed = f"{ms_per_1k:7.1f}" if ms_per_1k is not None else " " * 7
    print(f"{kind:8} {data:10} {method:22} {k:5d} {outliers:5d} {scores} {speed}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", default="static,minilm")
    parser.add_argument("--datasets", default="chatterbot,multiwoz")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--joins", default="0.45,0.55,0.65,0.75")
    parser.add_argument("--births", default="0.5,0.6,0.7,0.8")
    args = parser.parse_args()
    limit_blas_threads()
    header = ("embedder", "data", "method", "k", "outl", "AMI", "ARI", "NMI", "ms/1k")
    print("{:8} {:10} {:22} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7}".format(*header))
    for kind in args.embedders.split(","):
        settings = Settings(embedder=EmbedderSettings.model_validate({"kind": kind}))
        embedder = make_embedder(settings)
        for data in args.datasets.split(","):
            texts, labels = _data(data, args.limit)
            vectors = embedder.embed(texts)
            k = len(set(labels))
            km = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
            _row(kind, data, "kmeans k=labels", k, 0, labels, list(km), None)
            for join in (float(x) for x in args.joins.split(",")):
                for birth in (float(x) for x in args.births.split(",")):
                    if birth < join:
                        continue
                    params = AssignParams(
                        join_similarity=join, birth_similarity=birth, min_birth_size=5
                    )
                    pred, n_clusters, outliers, secs = _stream(vectors, params)
                    name = f"stream j{join:.2f} b{birth:.2f}"
                    per_k = 1e6 * secs / len(texts)
                    _row(kind, data, name, n_clusters, outliers, labels, pred, per_k)


if __name__ == "__main__":
    main()
