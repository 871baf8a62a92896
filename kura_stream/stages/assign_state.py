"""The explicit state of incremental assignment, and the thresholds it asks for.

`ClusterState` holds centroids (as member sums), exact counts, each cluster's spread of member
similarities, the outlier pool and the window of recent arrivals: everything a step depends
on, so a replay repeats it and a rebuild from stored vectors restores it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kura_stream.stages.assign_thresholds import (
    SPREAD_COLUMNS,
    ArrivalWindow,
    adaptive_join_thresholds,
    loo_similarities,
)
from kura_stream.stages.member_blocks import BlockTotals, MemberSource, block_totals

FloatArray = npt.NDArray[np.float32]
Member = tuple[str, str | None, FloatArray]
"""A stored conversation: (chat_id, cluster_id or None for an outlier, vector)."""
TimedMember = tuple[str, str | None, FloatArray, float]
"""The same with its arrival time (any increasing number), which orders a rebuild's window."""


@dataclass(frozen=True)
class AssignParams:
    """Thresholds of incremental assignment: fixed, or (None, the default) learnt as it goes.

    Attributes:
        join_similarity: Fixed minimum cosine similarity to a centroid to join that cluster
            (see join_margin); None: each cluster asks mean - join_z x std of its members'
            similarities to it, and at least the mean similarity of recent arrivals to it.
        birth_similarity: Fixed minimum cosine similarity between outliers founding a cluster;
            None: the birth_quantile of recent arrivals' similarities to their
            (min_birth_size - 1)-th nearest neighbour among the last birth_window arrivals.
        min_birth_size: Outliers (including the newcomer) needed to found a cluster.
        max_outlier_pool: Outliers kept as birth candidates; the oldest leave the pool (they
            stay outliers, counted, until a recompute places them).
        join_margin: With a fixed join_similarity, a loose cluster (a recompute's clusters of
            diverse traffic) takes a newcomer whose similarity reaches its cohesion, the mean
            similarity of its members to its centroid, minus this margin.
        join_floor: ... but never below this similarity.
        join_z: Adaptive join: standard deviations below its members' mean similarity a
            cluster still takes a newcomer.
        join_min_members: Adaptive join: a cluster with fewer members borrows the spread
            pooled over all clusters for the rest.
        birth_quantile: Adaptive birth: the quantile of recent neighbour similarities.
        birth_window: Adaptive birth: recent arrivals kept.
        birth_min_window: Adaptive birth: no birth before this many arrivals were seen.
    """

    join_similarity: float | None = None
    birth_similarity: float | None = None
    min_birth_size: int = 5
    max_outlier_pool: int = 5000
    join_margin: float = 0.1
    join_floor: float = 0.3
    join_z: float = 2.5
    join_min_members: int = 200
    birth_quantile: float = 0.25
    birth_window: int = 1000
    birth_min_window: int = 50


@dataclass
class ClusterState:
    """Centroids, exact counts, spreads, the outlier pool and recent arrivals.

    Attributes:
        dim: Vector length.
        ids: Cluster ids, row-aligned with sums, counts and spread.
        sums: Per-cluster sum of member vectors (float64 so long streams do not drift).
        counts: Per-cluster member counts.
        spread: Per-cluster (count, sum, sum of squares) of member similarities to the
            centroid of the cluster's other members, recorded as each joined (computed exactly
            from the stored vectors on a rebuild).
        outlier_ids: Chat ids in the outlier pool, oldest first.
        outlier_vectors: Their vectors, row-aligned.
        outliers_total: All conversations currently outside any cluster (pool or not).
        window: Recent arrivals (kept while a threshold is adaptive).
    """

    dim: int
    ids: list[str] = field(default_factory=list)
    sums: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    spread: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    outlier_ids: list[str] = field(default_factory=list)
    outlier_vectors: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    outliers_total: int = 0
    window: ArrivalWindow | None = None
    _centroids: FloatArray | None = field(default=None, repr=False)
    _norms: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    _pool: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    _pool_start: int = field(default=0, repr=False)
    _pool_view: FloatArray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sums.shape != (len(self.ids), self.dim):
            self.sums = np.zeros((len(self.ids), self.dim))
        if self.spread.shape != (len(self.ids), SPREAD_COLUMNS):
            self.spread = np.zeros((len(self.ids), SPREAD_COLUMNS))
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

        Adaptive (params.join_similarity None): mean - join_z x std of the cluster's member
        similarities, never below the recent arrivals' mean similarity to it (see
        adaptive_join_thresholds). Fixed: join_similarity, or lower for a loose cluster: its
        cohesion minus join_margin, not below join_floor.
        """
        if params.join_similarity is None:
            background = None
            if self.window is not None and self.window.filled:
                background = self.centroids.astype(np.float64) @ self.window.mean
            return adaptive_join_thresholds(
                self.spread,
                background=background,
                z=params.join_z,
                min_members=params.join_min_members,
            )
        loose = np.maximum(self.cohesion() - params.join_margin, params.join_floor)
        thresholds: FloatArray = np.minimum(loose, params.join_similarity).astype(np.float32)
        return thresholds

    def birth_threshold(self, params: AssignParams) -> float:
        """The similarity outliers founding a cluster must have to the newcomer."""
        if params.birth_similarity is not None:
            return params.birth_similarity
        if self.window is None:
            return float("inf")
        return self.window.birth_similarity(
            quantile=params.birth_quantile, min_points=params.birth_min_window
        )

    def note_arrival(self, unit: FloatArray, params: AssignParams) -> None:
        """Record an arrival in the recent window (while a threshold is adaptive)."""
        if params.birth_similarity is not None and params.join_similarity is not None:
            return
        if self.window is None:
            self.window = ArrivalWindow(
                dim=self.dim,
                size=params.birth_window,
                neighbours=max(params.min_birth_size - 1, 1),
            )
        self.window.push(unit)

    @property
    def total(self) -> int:
        """Conversations seen: clustered plus outliers."""
        return int(self.counts.sum()) + self.outliers_total

    def index_of(self, cluster_id: str) -> int:
        """Row of a cluster id."""
        return self.ids.index(cluster_id)

    def add_cluster(
        self,
        cluster_id: str,
        vector_sum: npt.NDArray[np.float64],
        count: int,
        spread: npt.NDArray[np.float64] | None = None,
    ) -> int:
        """Append a cluster with its member sum, count and spread row; returns its row."""
        self.ids.append(cluster_id)
        self.sums = np.vstack([self.sums, vector_sum[None, :]])
        self.counts = np.append(self.counts, np.int64(count))
        row = np.zeros(SPREAD_COLUMNS) if spread is None else spread
        self.spread = np.vstack([self.spread, row[None, :]])
        self._centroids = None
        return len(self.ids) - 1

    def add_member(self, row: int, vector: FloatArray, similarity: float) -> None:
        """Add one member to a cluster: its sum moves, its count and spread grow.

        Only this cluster's cached centroid row is renewed (renewing all of them cost
        O(clusters x dim) per conversation: 6 of 30 s filling a store of 100,000).

        Args:
            row: The cluster's row.
            vector: The member's unit vector.
            similarity: Its similarity to the centroid before it joined.
        """
        self.sums[row] += vector
        self.counts[row] += 1
        self.spread[row] += (1.0, similarity, similarity * similarity)
        if self._centroids is not None:
            norm = float(np.linalg.norm(self.sums[row]))
            self._norms[row] = norm
            self._centroids[row] = self.sums[row] / max(norm, 1e-12)

    def remove_member(self, row: int, vector: FloatArray) -> None:
        """Take a member out of a cluster (deleted from the store); the spread keeps it."""
        self.sums[row] -= vector
        self.counts[row] -= 1
        self._centroids = None

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

    def keep_outliers(self, keep: npt.NDArray[np.bool_]) -> None:
        """Leave in the pool only the outliers marked keep (the others found a cluster)."""
        self.outlier_ids = [cid for cid, k in zip(self.outlier_ids, keep, strict=True) if k]
        self.outlier_vectors = self.outlier_vectors[keep]
        self.outliers_total -= int((~keep).sum())

    @classmethod
    def rebuild(
        cls,
        dim: int,
        members: Iterable[Member | TimedMember] | MemberSource,
        *,
        params: AssignParams,
    ) -> ClusterState:
        """Rebuild the state from stored conversations.

        Stored data is the truth after a crash or a recompute: counts and sums come from it,
        each cluster's spread is computed exactly against its final centroid, the newest
        outliers (up to the pool size) become birth candidates again, and the newest arrivals
        refill the window. "Newest" is by each member's arrival time where it carries one (a
        store's order is not arrival order), else by its place in members.

        members is read twice when it can be (a re-iterable view of a store, a list); a
        one-shot iterator is read into memory first. A MemberSource (a store read in blocks)
        is read once, its vectors kept until the spreads are computed.
        """
        if isinstance(members, MemberSource):
            totals = block_totals(
                dim,
                members.blocks(),
                pool=params.max_outlier_pool,
                window=params.birth_window,
                reread=False,
            )
            return cls.from_totals(dim, totals, params=params)
        if iter(members) is members:
            members = list(members)
        normalised = _Normalised(members)
        state = cls(dim=dim)
        rows: dict[str, int] = {}
        outliers = _Newest(params.max_outlier_pool)
        recent = _Newest(params.birth_window)
        for chat_id, cluster_id, vector, arrived in normalised:
            recent.offer(arrived, chat_id, vector)
            if cluster_id is None:
                outliers.offer(arrived, chat_id, vector)
                state.outliers_total += 1
                continue
            row = rows.get(cluster_id)
            if row is None:
                row = rows[cluster_id] = state.add_cluster(cluster_id, np.zeros(dim), 0)
            state.sums[row] += vector
            state.counts[row] += 1
        state._centroids = None
        state._rebuild_spread(normalised, rows)
        pool = outliers.oldest_first()
        state.outlier_ids = [chat_id for chat_id, _ in pool]
        state.outlier_vectors = (
            np.stack([v for _, v in pool]) if pool else np.zeros((0, dim), np.float32)
        )
        for _, vector in recent.oldest_first():
            state.note_arrival(vector, params)
        return state

    @classmethod
    def from_totals(cls, dim: int, totals: BlockTotals, *, params: AssignParams) -> ClusterState:
        """The state of stored conversations summed block by block (see block_totals)."""
        state = cls(
            dim=dim,
            ids=list(totals.ids),
            sums=totals.sums,
            counts=totals.counts,
            spread=totals.spread,
            outliers_total=totals.outliers_total,
        )
        state.outlier_ids = [chat_id for chat_id, _ in totals.outliers]
        if totals.outliers:
            state.outlier_vectors = np.stack([v for _, v in totals.outliers])
        for _, vector in totals.recent:
            state.note_arrival(vector, params)
        return state

    def _rebuild_spread(self, members: Iterable[TimedMember], rows: dict[str, int]) -> None:
        """Each member's similarity to the rest of its cluster, from the final sums."""
        batch: list[tuple[int, FloatArray]] = []

        def flush() -> None:
            at = np.array([r for r, _ in batch])
            sims = loo_similarities(np.stack([v for _, v in batch]), self.sums[at])
            ok = np.isfinite(sims)
            for column, values in enumerate((np.ones_like(sims), sims, sims * sims)):
                np.add.at(self.spread[:, column], at[ok], values[ok])
            batch.clear()

        for _, cluster_id, vector, _ in members:
            if cluster_id is not None:
                batch.append((rows[cluster_id], vector))
                if len(batch) == 2000:
                    flush()
        if batch:
            flush()


class _Normalised:
    """Stored members with unit vectors (as the live state keeps them) and an arrival key."""

    def __init__(self, members: Iterable[Member | TimedMember]) -> None:
        self._members = members

    def __iter__(self) -> Iterator[TimedMember]:
        for place, member in enumerate(self._members):
            chat_id, cluster_id, vector = member[0], member[1], member[2]
            arrived = member[3] if len(member) == 4 else float(place)
            unit = np.asarray(vector, np.float32)
            unit = unit / max(float(np.linalg.norm(unit)), 1e-12)
            yield chat_id, cluster_id, unit, arrived


class _Newest:
    """The `size` newest of the (arrival, chat_id, vector) offered; ties go to the later."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[float, int, str, FloatArray]] = []
        self._offered = 0

    def offer(self, arrived: float, chat_id: str, vector: FloatArray) -> None:
        """Keep this one if it is among the newest so far."""
        item = (arrived, self._offered, chat_id, vector)
        self._offered += 1
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, item)
        elif self.size and item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def oldest_first(self) -> list[tuple[str, FloatArray]]:
        """What was kept, in arrival order."""
        return [(c, v) for _, _, c, v in sorted(self._heap, key=lambda item: item[:2])]
