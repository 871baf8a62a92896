"""Base clustering quality against gold labels: NMI, AMI, ARI and V-measure per method.

Usage:
    .venv/bin/python -m bench.bench_quality                    # project embedder, raw text
    .venv/bin/python -m bench.bench_quality --embedder lsa     # no model: TF-IDF + SVD
    .venv/bin/python -m bench.bench_quality --datasets multiwoz --multiwoz-limit 10000

Rows: dataset x summariser x method; k-means scores are means over the seeds (min_cluster_size
of HDBSCAN is 10, Kura's default). The summariser column is what gets embedded: "raw" is
the user's text itself; an offline or LLM summariser is added by registering a function in
SUMMARISERS (texts in, texts to embed out). Read AMI and ARI beside NMI: NMI rewards many
tiny clusters (Kura's k = n/10), AMI and ARI do not.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
    v_measure_score,
)

from kura_stream.settings import Settings
from kura_stream.stages.cluster import OUTLIER, hdbscan_clusters, kmeans_clusters, kura_k

Texts = Sequence[str]
Vectors = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def _offline(texts: Texts) -> list[str]:
    """Each text as a one-turn conversation through the offline summariser; its embedding text."""
    import asyncio
    from datetime import UTC, datetime

    from kura_stream.adapters.embedders import make_embedder
    from kura_stream.stages.offline_summary import OfflineSummariser
    from kura_stream.types import Conversation, Message

    now = datetime.now(UTC)
    convs = [
        Conversation(
            chat_id=str(i),
            created_at=now,
            messages=(Message(created_at=now, role="user", content=t),),
        )
        for i, t in enumerate(texts)
    ]
    summariser = OfflineSummariser(embedder=make_embedder(Settings()))
    summaries = asyncio.run(summariser.summarise_batch(convs))
    return [s.embedding_text() for s in summaries]


# Texts in, texts to embed out. An LLM summariser was not affordable here (minutes per
# hundred texts on two cores); it plugs in the same way.
SUMMARISERS: dict[str, Callable[[Texts], list[str]]] = {"raw": list, "offline": _offline}


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable[[Vectors, int, int], Labels]  # (vectors, n gold labels, seed) -> labels

    @property
    def seeded(self) -> bool:
        return self.name.startswith("kmeans")  # HDBSCAN has no seed: one run is enough


METHODS = [
    Method("kmeans k=ceil(n/10) (Kura)", lambda x, _, s: kmeans_clusters(x, seed=s)),
    Method("kmeans k=#labels", lambda x, k, s: kmeans_clusters(x, k=k, seed=s)),
    Method("hdbscan eom, noise->nearest", lambda x, _, s: hdbscan_clusters(x)),
    Method("hdbscan eom, noise kept (-1)", lambda x, _, s: hdbscan_clusters(x, noise="keep")),
    Method(
        "hdbscan leaf, noise->nearest",
        lambda x, _, s: hdbscan_clusters(x, cluster_selection_method="leaf"),
    ),
]


def load_dataset(name: str, multiwoz_limit: int, seed: int) -> tuple[list[str], list[str]]:
    """(texts, gold labels) of a labeled public dataset, de-duplicated by the loader."""
    from kura_stream.datasets import load_chatterbot, load_multiwoz

    if name == "chatterbot":
        items = load_chatterbot()
    elif name == "multiwoz":
        items = load_multiwoz(multiwoz_limit, seed)
    else:
        raise SystemExit(f"unknown dataset {name!r}")
    return [t for t, _ in items], [label for _, label in items]


def make_embed(kind: str) -> tuple[str, Callable[[Texts], Vectors]]:
    """The embedder to use: the project's (Settings()) or a model-free LSA baseline."""
    if kind == "project":
        try:
            from kura_stream.adapters.embedders import make_embedder
        except ImportError as exc:
            raise SystemExit(
                "kura_stream.adapters.embedders (make_embedder) is missing; try --embedder lsa"
            ) from exc
        embedder = make_embedder(Settings())
        return embedder.name, embedder.embed
    if kind == "lsa":
        return "lsa:tfidf+svd256", _lsa
    raise SystemExit(f"unknown embedder {kind!r}")


def _lsa(texts: Texts) -> Vectors:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(texts)
    dims = max(2, min(256, tfidf.shape[1] - 1, len(texts) - 1))
    x = TruncatedSVD(dims, random_state=0).fit_transform(tfidf)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    out: Vectors = x.astype(np.float32)
    return out


def scores(gold: Sequence[str], labels: Labels) -> dict[str, float]:
    """The four agreement scores; kept noise (OUTLIER) counts as one group of its own."""
    return {
        "NMI": normalized_mutual_info_score(gold, labels),
        "AMI": adjusted_mutual_info_score(gold, labels),
        "ARI": adjusted_rand_score(gold, labels),
        "V": v_measure_score(gold, labels),
    }


def run(
    datasets: Sequence[str],
    summarisers: Sequence[str],
    embedder: str,
    seeds: Sequence[int],
    multiwoz_limit: int,
) -> list[dict[str, object]]:
    """Every (dataset, summariser, method) row, scores averaged over seeds."""
    embed_name, embed = make_embed(embedder)
    rows: list[dict[str, object]] = []
    for dataset in datasets:
        texts, gold = load_dataset(dataset, multiwoz_limit, seeds[0])
        n_labels = len(set(gold))
        for summariser in summarisers:
            t0 = time.perf_counter()
            x = np.asarray(embed(SUMMARISERS[summariser](texts)), dtype=np.float32)
            embed_s = time.perf_counter() - t0
            print(
                f"# {dataset}: {len(texts)} texts, {n_labels} labels, Kura k={kura_k(len(texts))};"
                f" {summariser} embedded by {embed_name} in {embed_s:.1f}s",
                flush=True,
            )
            for method in METHODS:
                per_seed, found, noise, took = [], [], [], []
                for seed in seeds if method.seeded else seeds[:1]:
                    t0 = time.perf_counter()
                    labels = method.run(x, n_labels, seed)
                    took.append(time.perf_counter() - t0)
                    per_seed.append(scores(gold, labels))
                    found.append(len(set(labels.tolist()) - {OUTLIER}))
                    noise.append(float(np.mean(labels == OUTLIER)))
                row: dict[str, object] = {
                    "dataset": dataset,
                    "summariser": summariser,
                    "method": method.name,
                    "clusters": int(np.mean(found)),
                    "noise": float(np.mean(noise)),
                    "seconds": float(np.mean(took)),
                }
                for key in ("NMI", "AMI", "ARI", "V"):
                    row[key] = float(np.mean([s[key] for s in per_seed]))
                rows.append(row)
    return rows


def print_table(rows: Sequence[dict[str, object]]) -> None:
    """A plain-text table, one row per (dataset, summariser, method)."""
    header = (
        f"{'dataset':<11}{'summariser':<11}{'method':<34}{'clusters':>9}{'noise':>7}"
        f"{'NMI':>7}{'AMI':>7}{'ARI':>7}{'V':>7}{'sec':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['dataset']!s:<11}{r['summariser']!s:<11}{r['method']!s:<34}{r['clusters']!s:>9}"
            f"{r['noise']:>7.0%}{r['NMI']:>7.3f}{r['AMI']:>7.3f}{r['ARI']:>7.3f}{r['V']:>7.3f}"
            f"{r['seconds']:>7.1f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["chatterbot", "multiwoz"])
    parser.add_argument("--summarisers", nargs="+", default=["raw"], choices=sorted(SUMMARISERS))
    parser.add_argument("--embedder", default="project", choices=["project", "lsa"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--multiwoz-limit", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = run(args.datasets, args.summarisers, args.embedder, args.seeds, args.multiwoz_limit)
    print_table(rows)


if __name__ == "__main__":
    main()
