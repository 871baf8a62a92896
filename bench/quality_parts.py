"""The pieces of bench_quality_suite: data as conversations, scores, names, the live replay."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from kura_stream.labeled_sets import LABELED_SETS, load_chitchat_conversations
from kura_stream.protocols import ClusterNamer, Embedder, ParentNamer
from kura_stream.types import Conversation, Message, Summary

Vectors = npt.NDArray[np.float32]

TOPIC_NAMES: dict[str, dict[str, str]] = {
    "20newsgroups": {
        "alt.atheism": "atheism and religion debate",
        "comp.graphics": "computer graphics",
        "comp.os.ms-windows.misc": "Microsoft Windows",
        "comp.sys.ibm.pc.hardware": "IBM PC hardware",
        "comp.sys.mac.hardware": "Apple Mac hardware",
        "comp.windows.x": "the X Window System",
        "misc.forsale": "items for sale",
        "rec.autos": "cars",
        "rec.motorcycles": "motorcycles",
        "rec.sport.baseball": "baseball",
        "rec.sport.hockey": "ice hockey",
        "sci.crypt": "cryptography and encryption",
        "sci.electronics": "electronics",
        "sci.med": "medicine",
        "sci.space": "space and astronomy",
        "soc.religion.christian": "Christianity",
        "talk.politics.guns": "gun politics",
        "talk.politics.mideast": "Middle East politics",
        "talk.politics.misc": "politics",
        "talk.religion.misc": "religion",
    },
    "reuters8": {
        "acq": "company acquisitions and mergers",
        "crude": "crude oil",
        "earn": "company earnings",
        "grain": "grain and wheat",
        "interest": "interest rates",
        "money-fx": "currency exchange markets",
        "ship": "shipping",
        "trade": "international trade",
    },
}
"""Readable names of topic labels, for the name-to-topic check (where labels are topics)."""


@dataclass
class LabeledData:
    """One labeled set as conversations, with the text k-means sees."""

    name: str
    conversations: list[Conversation]
    user_texts: list[str]
    labels: list[str]

    @property
    def k(self) -> int:
        """Number of distinct labels."""
        return len(set(self.labels))


def load(name: str, n: int, seed: int = 0) -> LabeledData:
    """n conversations of a labeled set, in a seeded random order."""
    if name == "chitchat":
        pairs = load_chitchat_conversations(limit=n, seed=seed)
        convs = [c for c, _ in pairs]
        texts = ["\n".join(m.content for m in c.messages if m.role == "user") for c in convs]
        return LabeledData(name, convs, texts, [label for _, label in pairs])
    items = LABELED_SETS[name](limit=n, seed=seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    convs = [
        Conversation(
            chat_id=f"{name}-{i}",
            created_at=start + timedelta(seconds=i),
            messages=(Message(created_at=start, role="user", content=item.text),),
        )
        for i, item in enumerate(items)
    ]
    return LabeledData(name, convs, [t.text for t in items], [t.label for t in items])


def scores(gold: Sequence[str], pred: Sequence[object]) -> tuple[float, float]:
    """AMI and ARI of a prediction against the labels."""
    predicted = [str(p) for p in pred]
    return adjusted_mutual_info_score(gold, predicted), adjusted_rand_score(gold, predicted)


def kmeans_labels(vectors: Vectors, k: int, seed: int = 0) -> list[int]:
    """scikit-learn k-means (3 restarts) on unit rows: the baseline."""
    from sklearn.cluster import KMeans

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    model = KMeans(n_clusters=k, n_init=3, random_state=seed)
    return [int(x) for x in model.fit_predict(unit)]


@dataclass
class NameScores:
    """How well cluster names point at their members and topics."""

    top1: float
    top5: float
    topic: float | None
    examples: list[str] = field(default_factory=list)


def name_scores(
    names: dict[str, str],
    members: dict[str, list[int]],
    member_vectors: Vectors,
    labels: Sequence[str],
    topic_names: dict[str, str] | None,
    embedder: Embedder,
) -> NameScores:
    """Top-1/top-5: the share of members whose own cluster's name is among the names nearest
    to their text. Topic: the share of clusters whose name is nearest their majority topic's
    readable name among all topics' names."""
    ids = list(names)
    name_vecs = embedder.embed([names[i] for i in ids])
    sims = member_vectors @ name_vecs.T
    hits1 = hits5 = total = 0
    for col, cluster_id in enumerate(ids):
        for row in members[cluster_id]:
            rank = int((sims[row] > sims[row, col]).sum())
            hits1 += rank == 0
            hits5 += rank < 5
            total += 1
    topic = None
    if topic_names:
        topics = sorted(topic_names)
        topic_vecs = embedder.embed([topic_names[t] for t in topics])
        right = 0
        for col, cluster_id in enumerate(ids):
            majority = Counter(labels[r] for r in members[cluster_id]).most_common(1)[0][0]
            right += topics[int(np.argmax(topic_vecs @ name_vecs[col]))] == majority
        topic = right / len(ids)
    examples = [names[i] for i in sorted(ids, key=lambda i: -len(members[i]))[:4]]
    return NameScores(hits1 / max(total, 1), hits5 / max(total, 1), topic, examples)


@dataclass
class StreamResult:
    """The live replay: arrivals after the warm-up, and the end state."""

    outlier_share: float
    arrival_ami: float
    final_ami: float
    clusters: int
    recomputes: int


async def replay(
    summaries: Sequence[Summary],
    vectors: Vectors,
    labels: Sequence[str],
    *,
    namer: ClusterNamer,
    parent_namer: ParentNamer,
    embedder: Embedder,
    rate: float,
    warm_up: int,
) -> StreamResult:
    """The service's assigner and recompute schedule over a fresh embedded store.

    Time is simulated at `rate` conversations per second: the scheduler's own decision
    (recompute_due) is asked after every arrival, and a recompute it asks for runs at once
    (its measured seconds are added to the clock).
    """
    from kura_stream.adapters.store_factory import open_store
    from kura_stream.bootstrap import assign_params
    from kura_stream.service.assigner import Assigner
    from kura_stream.service.recompute import RecomputeParams, apply_recompute, plan_recompute
    from kura_stream.service.recompute_runner import recompute_due
    from kura_stream.settings import Settings, StoreSettings
    from kura_stream.types import EmbeddedConversation

    settings = Settings()
    cl = settings.clustering
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(path=Path(tmp) / "store"), vectors.shape[1])
        assigner = Assigner(store, assign_params(settings), min_size_shown=5)
        arrival: dict[str, str] = {}
        clock = since = took = 0.0
        arrived = recomputes = 0
        now = datetime.now(UTC)
        for i, (summary, vector) in enumerate(zip(summaries, vectors, strict=True)):
            clock += 1.0 / rate
            item = EmbeddedConversation(
                chat_id=summary.chat_id,
                summary=summary,
                vector=tuple(vector.tolist()),
                embedder=embedder.name,
                created_at=now,
                received_at=now,
            )
            placed = assigner.process([item]).assignments[0]
            arrival[summary.chat_id] = placed.cluster_id or f"outlier-{i}"
            arrived += 1
            state = assigner.state
            if recompute_due(
                cl,
                seconds_since=clock - since,
                arrived=arrived,
                outliers=state.outliers_total,
                total=state.total,
                last_took=took,
            ):
                started = time.perf_counter()
                plan = await plan_recompute(
                    store,
                    namer=namer,
                    parent_namer=parent_namer,
                    embed=embedder.embed,
                    params=RecomputeParams(grouping="centroids"),
                )
                if plan is not None:
                    apply_recompute(store, plan)
                    assigner.reload()
                took = time.perf_counter() - started
                clock += took
                since, arrived, recomputes = clock, 0, recomputes + 1
        final = {p.chat_id: p.cluster_id for b in store.iter_conversations() for p in b}
        clusters = len({c for c in final.values() if c})
        store.close()
    ids = [s.chat_id for s in summaries]
    later = ids[warm_up:]
    later_labels = list(labels[warm_up:])
    outliers = sum(arrival[c].startswith("outlier-") for c in later)
    final_pred = [final[c] or f"outlier-{i}" for i, c in enumerate(ids)]
    return StreamResult(
        outlier_share=outliers / max(len(later), 1),
        arrival_ami=scores(later_labels, [arrival[c] for c in later])[0],
        final_ami=scores(list(labels), final_pred)[0],
        clusters=clusters,
        recomputes=recomputes,
    )
