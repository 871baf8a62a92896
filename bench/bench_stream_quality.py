"""Single-pass streaming clustering quality vs batch k-means, on labeled public data.

Prints, per embedder and dataset, for thresholds learnt from the stream (a grid of join_z and
birth_quantile) and for fixed ones (a grid of join and birth similarity): clusters formed,
outliers, and AMI / ARI / NMI of the final assignment (outliers as their own label) next to
batch k-means at k = number of labels on the same vectors. MultiWOZ and chatterbot are the
sets the learnt defaults were chosen on; report others beside them, never tune on them.

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


def _floats(csv: str) -> list[float]:
    return [float(x) for x in csv.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", default="static,minilm")
    parser.add_argument("--datasets", default="chatterbot,multiwoz")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--zs", default="2,2.5,3")
    parser.add_argument("--quantiles", default="0.25,0.5")
    parser.add_argument("--joins", default="0.45,0.55,0.65")
    parser.add_argument("--births", default="0.55,0.65,0.75")
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
            grid = [
                (f"learnt z{z:g} q{q:g}", AssignParams(join_z=z, birth_quantile=q))
                for z in _floats(args.zs)
                for q in _floats(args.quantiles)
            ]
            grid += [
                (f"fixed j{j:.2f} b{b:.2f}", AssignParams(join_similarity=j, birth_similarity=b))
                for j in _floats(args.joins)
                for b in _floats(args.births)
                if b >= j
            ]
            for name, params in grid:
                pred, n_clusters, outliers, secs = _stream(vectors, params)
                per_k = 1e6 * secs / len(texts)
                _row(kind, data, name, n_clusters, outliers, labels, pred, per_k)


if __name__ == "__main__":
    main()
