"""Stored conversations a block at a time, and what a rebuild of the assign state sums from them.

A block holds its vectors as one float32 array, so a rebuild over a million conversations adds
them up with a few matrix products per block rather than a numpy call per conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from kura_stream.stages.assign_thresholds import SPREAD_COLUMNS, loo_similarities

FloatArray = npt.NDArray[np.float32]


class MemberBlock(NamedTuple):
    """Stored conversations, row-aligned.

    Attributes:
        chat_ids: Their chat ids.
        cluster_ids: Their clusters (None: an outlier).
        vectors: (n, dim) float32 vectors.
        arrived: (n,) when each was assigned (any increasing number; -inf where unknown).
        duplicates: Copies received again, summed over the block.
    """

    chat_ids: list[str]
    cluster_ids: list[str | None]
    vectors: FloatArray
    arrived: npt.NDArray[np.float64]
    duplicates: int = 0


@runtime_checkable
class MemberSource(Protocol):
    """Something that reads the stored conversations as blocks (one pass per call)."""

    def blocks(self) -> Iterator[MemberBlock]:
        """One pass over the conversations."""
        ...


def unit_rows(vectors: FloatArray) -> FloatArray:
    """Rows scaled to unit length (as the live state keeps them)."""
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit: FloatArray = (vectors / norms).astype(np.float32, copy=False)
    return unit


class NewestRows:
    """The `size` newest rows offered, by (arrival, place); ties go to the later place."""

    def __init__(self, size: int, dim: int) -> None:
        """Keep at most size rows of dim-wide vectors."""
        self.size = size
        self.arrived = np.zeros(0)
        self.place = np.zeros(0, dtype=np.int64)
        self.ids: list[str] = []
        self.vectors = np.zeros((0, dim), np.float32)

    def offer(
        self,
        arrived: npt.NDArray[np.float64],
        place: npt.NDArray[np.int64],
        ids: list[str],
        vectors: FloatArray,
    ) -> None:
        """Keep the newest of what is kept and these."""
        if not self.size or not len(ids):
            return
        arrived = np.concatenate([self.arrived, arrived])
        place = np.concatenate([self.place, place])
        ids = [*self.ids, *ids]
        vectors = np.concatenate([self.vectors, vectors])
        keep = np.lexsort((place, arrived))[-self.size :]  # oldest first
        self.arrived, self.place, self.vectors = arrived[keep], place[keep], vectors[keep]
        self.ids = [ids[i] for i in keep.tolist()]

    def oldest_first(self) -> list[tuple[str, FloatArray]]:
        """What was kept, in arrival order."""
        return list(zip(self.ids, self.vectors, strict=True))


@dataclass
class BlockTotals:
    """What a rebuild of the assign state needs from the stored conversations.

    Attributes:
        ids: Cluster ids in order of first appearance, row-aligned with the arrays.
        sums: (k, dim) float64 member sums.
        counts: (k,) member counts.
        spread: (k, SPREAD_COLUMNS) of member similarities to the rest of their cluster.
        outliers_total: Conversations outside any cluster.
        outliers: The newest `pool` outliers, oldest first.
        recent: The newest `window` arrivals, oldest first.
        duplicates: Copies received again, over all blocks.
    """

    ids: list[str] = field(default_factory=list)
    sums: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    spread: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    outliers_total: int = 0
    outliers: list[tuple[str, FloatArray]] = field(default_factory=list)
    recent: list[tuple[str, FloatArray]] = field(default_factory=list)
    duplicates: int = 0


class _Rows(NamedTuple):
    at: npt.NDArray[np.intp]
    unit: FloatArray


def block_totals(
    dim: int, blocks: Iterable[MemberBlock], *, pool: int, window: int, reread: bool
) -> BlockTotals:
    """Sums, counts, spreads, newest outliers and recent arrivals of the conversations.

    Args:
        dim: Vector length.
        blocks: The conversations.
        reread: Read blocks twice (cheap for blocks in memory); else once, their unit vectors
            kept until the spreads are computed (a store is read once).
        pool: Outliers kept as birth candidates.
        window: Recent arrivals kept.
    """
    totals = BlockTotals(sums=np.zeros((64, dim)), counts=np.zeros(64, np.int64))
    rows: dict[str, int] = {}
    outliers, recent = NewestRows(pool, dim), NewestRows(window, dim)
    kept: list[_Rows] = []
    place = 0
    for block in blocks:
        unit = unit_rows(block.vectors)
        at = np.array(
            [-1 if c is None else rows.setdefault(c, len(rows)) for c in block.cluster_ids],
            dtype=np.intp,
        )
        _grow(totals, len(rows))
        order = np.arange(place, place + len(at), dtype=np.int64)
        place += len(at)
        member = at >= 0
        members = np.flatnonzero(member)
        inside = unit if len(members) == len(at) else unit[members]
        if len(members):
            # float32 sums of one block (a few thousand rows), added up in float64
            onehot = csr_matrix(
                (np.ones(len(members), np.float32), (at[members], np.arange(len(members)))),
                shape=(len(totals.counts), len(members)),
            )
            totals.sums += onehot @ inside
            totals.counts += np.bincount(at[members], minlength=len(totals.counts))
        lone = np.flatnonzero(~member)
        totals.outliers_total += len(lone)
        outliers.offer(
            block.arrived[lone], order[lone], [block.chat_ids[i] for i in lone], unit[lone]
        )
        recent.offer(block.arrived, order, block.chat_ids, unit)
        totals.duplicates += block.duplicates
        if not reread:
            kept.append(_Rows(at[members], inside))
    k = len(rows)
    totals.ids, totals.sums, totals.counts = list(rows), totals.sums[:k], totals.counts[:k]
    totals.spread = np.zeros((k, SPREAD_COLUMNS))
    again = kept if not reread else (_member_rows(b, rows) for b in blocks)
    for part in again:
        _add_spread(totals, part)
    totals.outliers, totals.recent = outliers.oldest_first(), recent.oldest_first()
    return totals


def _grow(totals: BlockTotals, k: int) -> None:
    if k <= len(totals.counts):
        return
    size = max(k, 2 * len(totals.counts))
    sums = np.zeros((size, totals.sums.shape[1]))
    sums[: len(totals.sums)] = totals.sums
    counts = np.zeros(size, np.int64)
    counts[: len(totals.counts)] = totals.counts
    totals.sums, totals.counts = sums, counts


def _member_rows(block: MemberBlock, rows: dict[str, int]) -> _Rows:
    at = np.array([-1 if c is None else rows[c] for c in block.cluster_ids], dtype=np.intp)
    members = np.flatnonzero(at >= 0)
    return _Rows(at[members], unit_rows(block.vectors[members]))


def _add_spread(totals: BlockTotals, part: _Rows) -> None:
    """Each member's similarity to the rest of its cluster, from the final sums."""
    if not len(part.at):
        return
    sims = loo_similarities(part.unit, totals.sums[part.at])
    ok = np.isfinite(sims)
    k = len(totals.ids)
    at, good = part.at[ok], sims[ok]
    totals.spread[:, 0] += np.bincount(at, minlength=k)
    totals.spread[:, 1] += np.bincount(at, weights=good, minlength=k)
    totals.spread[:, 2] += np.bincount(at, weights=good * good, minlength=k)
