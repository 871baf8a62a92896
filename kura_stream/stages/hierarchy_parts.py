"""The hierarchy's records and level arithmetic: report, result, ids, targets, neighbourhoods."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kura_stream.stages.cluster import kmeans_clusters
from kura_stream.types import Cluster


@dataclass
class HierarchyReport:
    """What happened while building the hierarchy, for logs and the dashboard.

    Attributes:
        levels: Levels added above the base clusters.
        proposals: propose_parents calls.
        proposal_failures: propose_parents calls that failed twice (children's names were used).
        candidates: Candidates proposed, over all levels, after per-neighbourhood clean-up.
        merged: Candidates merged into an earlier one as near-duplicates.
        rejections: choose_parent answers not among the offered candidates (or errors).
        fallbacks: Children placed on the nearest candidate after a rejected retry.
        label_failures: label_parent calls that failed (the candidate name was kept).
    """

    levels: int = 0
    proposals: int = 0
    proposal_failures: int = 0
    candidates: int = 0
    merged: int = 0
    rejections: int = 0
    fallbacks: int = 0
    label_failures: int = 0


@dataclass(frozen=True)
class Hierarchy:
    """The result of `build_hierarchy`.

    Attributes:
        clusters: Base clusters (parent_id set) then parents level by level.
        centroids: Every cluster's unit centroid by id (parents: count-weighted children mean).
        report: Counts of calls, rejections and fallbacks.
    """

    clusters: list[Cluster]
    centroids: dict[str, npt.NDArray[np.float32]]
    report: HierarchyReport = field(default_factory=HierarchyReport)


def normal_text(text: str) -> str:
    """Case, quotes, punctuation and spacing folded away: the key of exact-duplicate names."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def parent_id(level: int, child_ids: Sequence[str]) -> str:
    """A parent's id from its level and its children's ids: same children, same id."""
    digest = hashlib.blake2b("\n".join(sorted(child_ids)).encode(), digest_size=6).hexdigest()
    return f"p{level}-{digest}"


def target_parents(n: int, max_top: int, branching: int) -> int:
    """How many parents the next level aims at: n / branching, but not below what max_top needs.

    Near the top a coarse cut would waste the allowed number of top-level clusters, so the
    target is at least min(max_top, ceil(n / 2)).
    """
    return max(1, math.ceil(n / branching), min(max_top, math.ceil(n / 2)))


def neighbourhoods(vectors: npt.NDArray[np.float32], size: int, seed: int) -> list[list[int]]:
    """Group rows into k-means neighbourhoods of about `size`, none larger than 2 * size.

    Oversized groups are split again by k-means (k-means does not bound group sizes) and,
    when points are too alike for k-means to split, cut into consecutive chunks.
    """
    n = vectors.shape[0]
    if n <= size:
        return [list(range(n))]
    labels = kmeans_clusters(vectors, k=math.ceil(n / size), seed=seed)
    if labels.max() == 0:
        return [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    out: list[list[int]] = []
    for label in range(int(labels.max()) + 1):
        idx = np.flatnonzero(labels == label)
        if idx.size <= 2 * size:
            out.append(idx.tolist())
        else:  # a strict subset, so the recursion ends
            out.extend(idx[part].tolist() for part in neighbourhoods(vectors[idx], size, seed))
    return out
