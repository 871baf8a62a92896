"""Incremental clustering: each conversation joins the nearest centroid or waits as an outlier.

The state is explicit (`ClusterState`) so a stream can be replayed in a test and rebuilt from
the store after a crash. A conversation near enough to a centroid joins it and moves it (the
centroid is the normalised sum of its members). Otherwise it enters a bounded outlier pool; when
enough mutually similar outliers gather, they found a new cluster together. Counts are exact:
every conversation seen is in exactly one cluster or in the outlier set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kura_stream.types import Assignment

_ID_NAMESPACE = uuid.UUID("6f1c1d2e-8e0b-4d52-9a59-0f7f4b0c7a11")
FloatArray = npt.NDArray[np.float32]


def cluster_id_for(founder_chat_id: str) -> str:
    """A cluster id derived from its founding conversation, so a replay makes the same id."""
    return uuid.uuid5(_ID_NAMESPACE, founder_chat_id).hex


@dataclass(frozen=True)
class AssignParams:
    """Thresholds of incremental assignment.

    Attributes:
        join_similarity: Minimum cosine similarity to a centroid to join that cluster.
        birth_similarity: Minimum cosine similarity between outliers founding a cluster.
        min_birth_size: Outliers (including the newcomer) needed to found a cluster.
        max_outlier_pool: Outliers kept as birth candidates; the oldest leave the pool (they
            stay outliers, counted, until a recompute places them).
        join_margin: A loose cluster (a recompute's clusters of diverse traffic) takes a
            newcomer whose similarity reaches its cohesion, the mean similarity of its members
            to its centroid, minus this margin, even below join_similarity.
        join_floor: ... but never below this similarity.
    """

    join_similarity: float = 0.55
    birth_similarity: float = 0.65
    min_birth_size: int = 5
    max_outlier_pool: int = 5000
    join_margin: float = 0.1
    join_floor: float = 0.3


@dataclass
class ClusterState:
    """Centroids, exact counts and the outlier pool of the incremental clusterer.

    Attributes:
        dim: Vector length.
        ids: Cluster ids, row-aligned with sums and counts.
        sums: Per-cluster sum of member vectors (float64 so long streams do not drift).
        counts: Per-cluster member counts.
        outlier_ids: Chat ids in the outlier pool, oldest first.
        outlier_vectors: Their vectors, row-aligned.
        outliers_total: All conversations currently outside any cluster (pool or not).
    """

    dim: int
    ids: list[str] = field(default_factory=list)
    sums: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    outlier_ids: list[str] = field(default_factory=list)
    outlier_vectors: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    outliers_total: int = 0
    _centroids: FloatArray | None = field(default=None, repr=False)
    _norms: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    _pool: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    _pool_start: int = field(default=0, repr=False)
    _pool_view: FloatArray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sums.shape != (len(self.ids), self.dim):
            self.sums = np.zeros((len(self.ids), self.dim))
        if self.outlier_vectors.shape != (len(self.outlier_ids), self.dim):
            self.outlier_vectors = np.zeros((len(self.outlier_ids), self.dim), np.float32)

    @property
    def centroids(self) -> FloatArray:
        """Unit-length centroids, one row per cluster (cached between changes)."""
        if self._centroids is None:
            self._norms = np.linalg.norm(self.sums, axis=1)
            norms = np.maximum(self._norms, 1e-12)[:, None]
            self._centroids = (self.sums / norms).astype(np.float32)
        return self._centroids

    def cohesion(self) -> FloatArray:
        """Each cluster's mean member similarity to its centroid.

        For unit members this is |sum| / count: the sum's projection on its own direction.
        """
        _ = self.centroids  # computes the norms with the centroids
        return (self._norms / np.maximum(self.counts, 1)).astype(np.float32)

    def join_thresholds(self, params: AssignParams) -> FloatArray:
        """The similarity each cluster asks of a newcomer.

        join_similarity, or lower for a loose cluster: its cohesion minus the margin, not
        below the floor.
        """
        loose = np.maximum(self.cohesion() - params.join_margin, params.join_floor)
        thresholds: FloatArray = np.minimum(loose, params.join_similarity).astype(np.float32)
        return thresholds

    @property
    def total(self) -> int:
        """Conversations seen: clustered plus outliers."""
        return int(self.counts.sum()) + self.outliers_total

    def index_of(self, cluster_id: str) -> int:
        """Row of a cluster id."""
        return self.ids.index(cluster_id)

    def add_cluster(self, cluster_id: str, vector_sum: npt.NDArray[np.float64], count: int) -> int:
        """Append a cluster with its member sum and count; returns its row."""
        self.ids.append(cluster_id)
        self.sums = np.vstack([self.sums, vector_sum[None, :]])
        self.counts = np.append(self.counts, np.int64(count))
        self._centroids = None
        return len(self.ids) - 1

    def push_outlier(self, chat_id: str, unit: FloatArray, max_pool: int) -> None:
        """Append to the outlier pool; beyond max_pool the oldest leave it.

        The pool is a window sliding over a buffer twice its size, so an append costs O(1)
        amortised (stacking a new array for each outlier copied the whole pool: 0.8 ms per
        outlier with 5,000 waiting).
        """
        n = len(self.outlier_ids)
        if self._pool_view is not self.outlier_vectors:  # replaced since (a birth, a rebuild)
            self._pool = np.zeros((max(2 * (n + 1), 64), self.dim), np.float32)
            self._pool[:n] = self.outlier_vectors
            self._pool_start = 0
        end = self._pool_start + n
        if end == len(self._pool):  # the window reached the end: move it back, or grow
            if len(self._pool) < 2 * (n + 1):
                grown = np.zeros((2 * (n + 1), self.dim), np.float32)
                grown[:n] = self._pool[self._pool_start : end]
                self._pool = grown
            else:
                self._pool[:n] = self._pool[self._pool_start : end].copy()
            self._pool_start, end = 0, n
        self._pool[end] = unit
        self.outlier_ids.append(chat_id)
        n += 1
        if n > max_pool:
            drop = n - max_pool
            del self.outlier_ids[:drop]
            self._pool_start += drop
            n = max_pool
        self.outlier_vectors = self._pool[self._pool_start : self._pool_start + n]
        self._pool_view = self.outlier_vectors

    def add_member(self, row: int, vector: FloatArray) -> None:
        """Add one member to a cluster: its sum moves, its count grows by one.

        Only this cluster's cached centroid row is renewed (renewing all of them cost
        O(clusters x dim) per conversation: 6 of 30 s filling a store of 100,000).
        """
        self.sums[row] += vector
        self.counts[row] += 1
        if self._centroids is not None:
            norm = float(np.linalg.norm(self.sums[row]))
            self._norms[row] = norm
            self._centroids[row] = self.sums[row] / max(norm, 1e-12)

    @classmethod
    def rebuild(
        cls,
        dim: int,
        members: Iterable[tuple[str, str | None, FloatArray]],
        *,
        params: AssignParams,
    ) -> ClusterState:
        """Rebuild the state from stored conversations: (chat_id, cluster_id or None, vector).

        Stored data is the truth after a crash: counts and sums come from it, and the newest
        outliers (up to the pool size) become birth candidates again.
        """
        state = cls(dim=dim)
        rows: dict[str, int] = {}
        outliers: list[tuple[str, FloatArray]] = []
        for chat_id, cluster_id, vector in members:
            if cluster_id is None:
                outliers.append((chat_id, vector))
                continue
            row = rows.get(cluster_id)
            if row is None:
                row = rows[cluster_id] = state.add_cluster(cluster_id, np.zeros(dim), 0)
            state.sums[row] += vector
            state.counts[row] += 1
        state._centroids = None
        state.outliers_total = len(outliers)
        pool = outliers[-params.max_outlier_pool :]
        state.outlier_ids = [chat_id for chat_id, _ in pool]
        state.outlier_vectors = (
            np.stack([v for _, v in pool]).astype(np.float32)
            if pool
            else np.zeros((0, dim), np.float32)
        )
        return state


@dataclass(frozen=True)
class AssignOutcome:
    """What one assignment step did.

    Attributes:
        assignments: The newcomer's assignment first, then any outliers re-homed by a birth.
        born: The id of a cluster founded by this step, if any.
    """

    assignments: tuple[Assignment, ...]
    born: str | None = None


def _unit(vector: FloatArray) -> FloatArray:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("cannot assign a zero or non-finite vector")
    return (vector / norm).astype(np.float32)


def assign(
    state: ClusterState, chat_id: str, vector: FloatArray, *, params: AssignParams
) -> tuple[ClusterState, AssignOutcome]:
    """Place one conversation: join the nearest cluster, wait as an outlier, or found a cluster.

    The caller guarantees chat_id was not assigned before (idempotency is by chat_id upstream).

    Args:
        state: The current state; updated in place and returned.
        chat_id: The conversation's id.
        vector: Its embedding, shape (dim,).
        params: Thresholds.

    Returns:
        The state and what happened.
    """
    if vector.shape != (state.dim,):
        raise ValueError(f"expected a vector of shape ({state.dim},), got {vector.shape}")
    unit = _unit(vector)
    if state.ids:
        sims = state.centroids @ unit
        open_to = sims >= state.join_thresholds(params)
        row = int(np.argmax(np.where(open_to, sims, -np.inf))) if open_to.any() else -1
        if row >= 0:
            state.add_member(row, unit)
            joined = Assignment(
                chat_id=chat_id, cluster_id=state.ids[row], similarity=float(sims[row])
            )
            return state, AssignOutcome(assignments=(joined,))
        best = float(sims.max())
    else:
        best = 0.0
    return _enter_outliers(state, chat_id, unit, best_similarity=best, params=params)


def _enter_outliers(
    state: ClusterState,
    chat_id: str,
    unit: FloatArray,
    *,
    best_similarity: float,
    params: AssignParams,
) -> tuple[ClusterState, AssignOutcome]:
    pool = state.outlier_vectors
    sims = pool @ unit if len(pool) else np.zeros(0, np.float32)
    near = np.flatnonzero(sims >= params.birth_similarity)
    if len(near) + 1 < params.min_birth_size:
        state.push_outlier(chat_id, unit, params.max_outlier_pool)
        state.outliers_total += 1
        outlier = Assignment(chat_id=chat_id, cluster_id=None, similarity=best_similarity)
        return state, AssignOutcome(assignments=(outlier,))
    return _found_cluster(state, chat_id, unit, near, params=params)


def _found_cluster(
    state: ClusterState,
    chat_id: str,
    unit: FloatArray,
    near: npt.NDArray[np.intp],
    *,
    params: AssignParams,
) -> tuple[ClusterState, AssignOutcome]:
    cluster_id = cluster_id_for(chat_id)
    members = np.vstack([state.outlier_vectors[near], unit[None, :]])
    row = state.add_cluster(cluster_id, members.sum(axis=0, dtype=np.float64), len(members))
    # Outliers that now sit near the new centroid join it too.
    centroid = state.centroids[row]
    keep = np.ones(len(state.outlier_ids), dtype=bool)
    keep[near] = False
    sims_to_new = state.outlier_vectors @ centroid
    extra = np.flatnonzero(keep & (sims_to_new >= params.join_similarity))
    for i in extra:
        state.add_member(row, state.outlier_vectors[i])
    keep[extra] = False
    centroid = state.centroids[row]
    rehomed_rows = np.concatenate([near, extra])
    rehomed = tuple(
        Assignment(
            chat_id=state.outlier_ids[i],
            cluster_id=cluster_id,
            similarity=float(state.outlier_vectors[i] @ centroid),
        )
        for i in rehomed_rows
    )
    state.outlier_ids = [cid for cid, k in zip(state.outlier_ids, keep, strict=True) if k]
    state.outlier_vectors = state.outlier_vectors[keep]
    state.outliers_total -= len(rehomed_rows)
    founder = Assignment(
        chat_id=chat_id,
        cluster_id=cluster_id,
        similarity=float(unit @ centroid),
        new_cluster=True,
    )
    return state, AssignOutcome(assignments=(founder, *rehomed), born=cluster_id)


def assign_many(
    state: ClusterState,
    items: Sequence[tuple[str, FloatArray]],
    *,
    params: AssignParams,
) -> tuple[ClusterState, list[AssignOutcome]]:
    """Assign a batch in order; the same as calling assign() for each item."""
    outcomes = []
    for chat_id, vector in items:
        state, outcome = assign(state, chat_id, vector, params=params)
        outcomes.append(outcome)
    return state, outcomes
