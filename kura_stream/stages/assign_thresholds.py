"""Thresholds of incremental assignment, derived from what the stream has seen.

Join: a cluster takes a newcomer whose similarity to its centroid is no lower than the
cluster's own members' usually are (mean - z x std of their similarities), and higher than
recent arrivals' on average; a small cluster borrows the spread pooled over all clusters.
Birth: outliers found a cluster when they are as close to each other as recent arrivals
typically are to their (min_birth_size - 1)-th nearest neighbours.

The statistics behind both live in explicit state (a `spread` table per cluster, an
`ArrivalWindow`), so a replay gives the same thresholds and a rebuild from stored vectors
gives them again as far as the stored data allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

SPREAD_COLUMNS = 3
"""Columns of a cluster's spread row: similarities recorded, their sum, their sum of squares."""


def loo_similarities(members: FloatArray, total: Float64Array) -> Float64Array:
    """Each member's cosine similarity to the centroid of the cluster's other members.

    This is the similarity a newcomer is measured by (it is not in the centroid it is compared
    with), so members and newcomers are judged on one scale.

    Args:
        members: Unit vectors of members, shape (n, dim).
        total: The sum of all the cluster's member vectors (these and any others): shape
            (dim,), or (n, dim) for members of several clusters, each row its member's.

    Returns:
        Similarities, shape (n,); NaN for a member with no other member (a lone one).
    """
    others = np.asarray(total, np.float64) - members.astype(np.float64)
    norms = np.linalg.norm(others, axis=1)
    dots = np.einsum("ij,ij->i", others, members.astype(np.float64))
    sims: Float64Array = np.where(norms > 1e-9, dots / np.maximum(norms, 1e-12), np.nan)
    return sims


def spread_row(similarities: Float64Array) -> Float64Array:
    """A spread row (count, sum, sum of squares) of the finite similarities given."""
    finite = similarities[np.isfinite(similarities)]
    return np.array([len(finite), finite.sum(), np.square(finite).sum()], dtype=np.float64)


def adaptive_join_thresholds(
    spread: Float64Array,
    *,
    background: Float64Array | None,
    z: float,
    min_members: int,
) -> FloatArray:
    """Per-cluster join thresholds from the clusters' spreads of member similarity.

    A cluster asks mean - z x std of its members' similarities to (the rest of) it. The std of
    a cluster with fewer than min_members recorded similarities is topped up with the
    within-cluster spread pooled over all clusters, so a newborn neither trusts the narrow
    spread of a handful of founders (picked for being close) nor waits for members it cannot
    get. Means are the clusters' own: clusters differ in how tight they are.

    No cluster asks less than its background, the mean similarity of recent arrivals to it: a
    cluster that takes newcomers no closer than arrivals at large grows into a catch-all (its
    spread widens with each loose member, which lowers its threshold further). On chatterbot
    that happened within 500 arrivals in most stream orders.

    Args:
        spread: Shape (clusters, 3): count, sum, sum of squares of member similarities.
        background: Mean similarity of recent arrivals to each cluster, or None.
        z: Standard deviations below the mean a newcomer may be.
        min_members: Recorded similarities a cluster needs to stand on its own spread.

    Returns:
        Thresholds, shape (clusters,); +inf for a cluster with nothing to judge by.
    """
    if len(spread) == 0:
        return np.zeros(0, np.float32)
    n, total, squares = spread[:, 0], spread[:, 1], spread[:, 2]
    has = n > 0
    mean = np.where(has, total / np.maximum(n, 1.0), np.inf)
    # Sums of squared deviations from each cluster's own mean, and their degrees of freedom.
    deviations = np.maximum(np.where(has, squares - total * total / np.maximum(n, 1.0), 0.0), 0.0)
    freedom = np.maximum(n - 1.0, 0.0)
    pooled = float(deviations.sum()) / max(float(freedom.sum()), 1.0)
    borrowed = np.maximum(min_members - freedom, 0.0)
    variance = (deviations + borrowed * pooled) / np.maximum(freedom + borrowed, 1.0)
    thresholds = mean - z * np.sqrt(variance)
    if background is not None:
        thresholds = np.maximum(thresholds, background)
    out: FloatArray = thresholds.astype(np.float32)
    return out


@dataclass
class ArrivalWindow:
    """The last `size` arrivals and each one's k-th nearest-neighbour similarity among them.

    Kept incrementally: an arrival costs one product with the window (O(size x dim)) plus the
    upkeep of the neighbour lists it enters or leaves, so the birth threshold is always fresh
    without a quadratic pass per arrival.

    Attributes:
        dim: Vector length.
        size: Arrivals kept.
        neighbours: k: which nearest neighbour's similarity describes a point's density.
        seen: Arrivals pushed so far (the window holds the last min(seen, size)).
    """

    dim: int
    size: int
    neighbours: int
    seen: int = 0
    _vectors: FloatArray = field(init=False, repr=False)
    _sims: FloatArray = field(init=False, repr=False)
    _top: FloatArray = field(init=False, repr=False)
    _top_slot: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.size < 2 or self.neighbours < 1:
            raise ValueError("a window needs size >= 2 and neighbours >= 1")
        self._vectors = np.zeros((self.size, self.dim), np.float32)
        self._sims = np.full((self.size, self.size), -np.inf, np.float32)
        self._top = np.full((self.size, self.neighbours), -np.inf, np.float32)
        self._top_slot = np.full((self.size, self.neighbours), -1, np.int64)
        self._sum = np.zeros(self.dim, np.float64)

    @property
    def mean(self) -> Float64Array:
        """The mean of the arrivals in the window (zeros while empty)."""
        mean: Float64Array = self._sum / max(self.filled, 1)
        return mean

    @property
    def filled(self) -> int:
        """Arrivals currently in the window."""
        return min(self.seen, self.size)

    def push(self, unit: FloatArray) -> None:
        """Add an arrival (a unit vector); beyond size, the oldest leaves."""
        slot = self.seen % self.size
        evicting = self.seen >= self.size
        self.seen += 1
        n = self.filled
        if evicting:
            self._sum -= self._vectors[slot]
        self._sum += unit
        self._vectors[slot] = unit
        row = self._vectors[:n] @ unit
        row[slot] = -np.inf
        self._sims[slot, :n] = row
        self._sims[:n, slot] = row
        stale = np.zeros(n, dtype=bool)
        if evicting:  # those that counted the old occupant among their neighbours look again
            stale = (self._top_slot[:n] == slot).any(axis=1)
        stale[slot] = True
        rows = np.flatnonzero(stale)
        self._top[rows], self._top_slot[rows] = self._best(self._sims[rows, :n])
        enters = ~stale & (row > self._top[:n, -1])
        rows = np.flatnonzero(enters)
        if len(rows):
            self._top[rows, -1] = row[rows]
            self._top_slot[rows, -1] = slot
            order = np.argsort(-self._top[rows], axis=1, kind="stable")
            self._top[rows] = np.take_along_axis(self._top[rows], order, axis=1)
            self._top_slot[rows] = np.take_along_axis(self._top_slot[rows], order, axis=1)

    def _best(self, sims: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Per row of sims, the k largest, descending, with their slots (-inf / -1 if too few)."""
        rows, n = sims.shape
        k = min(self.neighbours, n)
        idx = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k < n
            else np.tile(np.arange(n), (rows, 1))
        )
        picked = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        top = np.full((rows, self.neighbours), -np.inf, np.float32)
        slots = np.full((rows, self.neighbours), -1, np.int64)
        top[:, :k] = np.take_along_axis(picked, order, axis=1)
        slots[:, :k] = np.take_along_axis(idx, order, axis=1)
        return top, slots

    def kth_similarities(self) -> FloatArray:
        """Each arrival's similarity to its k-th nearest other arrival in the window."""
        kth: FloatArray = self._top[: self.filled, -1].copy()
        return kth

    def birth_similarity(self, *, quantile: float, min_points: int) -> float:
        """The quantile of k-th neighbour similarities; +inf (no birth) before min_points."""
        if self.filled < max(min_points, self.neighbours + 1):
            return float("inf")
        return float(np.quantile(self.kth_similarities(), quantile))
