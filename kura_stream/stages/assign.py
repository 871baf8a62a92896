"""Incremental clustering: each conversation joins the nearest centroid or waits as an outlier.

The state is explicit (`ClusterState`) so a stream can be replayed in a test and rebuilt from
the store after a crash. A conversation near enough to a centroid joins it and moves it (the
centroid is the normalised sum of its members). Otherwise it enters a bounded outlier pool; when
enough mutually similar outliers gather, they found a new cluster together, and waiting outliers
close enough to the newborn join it. Counts are exact: every conversation seen is in exactly one
cluster or in the outlier set.

"Near enough" is learnt from the stream unless settings fix it (see assign_thresholds).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kura_stream.stages.assign_state import AssignParams, ClusterState
from kura_stream.stages.assign_thresholds import loo_similarities, spread_row
from kura_stream.types import Assignment

__all__ = [
    "AssignOutcome",
    "AssignParams",
    "ClusterState",
    "assign",
    "assign_many",
    "cluster_id_for",
    "rehome_outliers",
]

_ID_NAMESPACE = uuid.UUID("6f1c1d2e-8e0b-4d52-9a59-0f7f4b0c7a11")
FloatArray = npt.NDArray[np.float32]


def cluster_id_for(founder_chat_id: str) -> str:
    """A cluster id derived from its founding conversation, so a replay makes the same id."""
    return uuid.uuid5(_ID_NAMESPACE, founder_chat_id).hex


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
    state.note_arrival(unit, params)
    if state.ids:
        sims = state.centroids @ unit
        open_to = sims >= state.join_thresholds(params)
        row = int(np.argmax(np.where(open_to, sims, -np.inf))) if open_to.any() else -1
        if row >= 0:
            state.add_member(row, unit, float(sims[row]))
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
    near = np.flatnonzero(sims >= state.birth_threshold(params))
    if len(near) + 1 < params.min_birth_size:
        state.push_outlier(chat_id, unit, params.max_outlier_pool)
        state.outliers_total += 1
        outlier = Assignment(chat_id=chat_id, cluster_id=None, similarity=best_similarity)
        return state, AssignOutcome(assignments=(outlier,))
    # The newcomer's nearest found the cluster: a tight core. The rest of the neighbourhood
    # joins only if it meets the newborn's threshold (founding with every outlier above a
    # low birth threshold made catch-all clusters on chatterbot).
    core = near[np.argsort(-sims[near], kind="stable")[: params.min_birth_size - 1]]
    return _found_cluster(state, chat_id, unit, np.sort(core), params=params)


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
    total = members.sum(axis=0, dtype=np.float64)
    spread = spread_row(loo_similarities(members, total))
    row = state.add_cluster(cluster_id, total, len(members), spread)
    founders = [state.outlier_ids[i] for i in near]
    founder_vectors = state.outlier_vectors[near]
    keep = np.ones(len(state.outlier_ids), dtype=bool)
    keep[near] = False
    state.keep_outliers(keep)
    # Outliers that now meet the newborn's threshold join it too.
    state, rehomed = rehome_outliers(state, params=params, rows=[row])
    centroid = state.centroids[row]
    founded = tuple(
        Assignment(chat_id=c, cluster_id=cluster_id, similarity=float(v @ centroid))
        for c, v in zip(founders, founder_vectors, strict=True)
    )
    founder = Assignment(
        chat_id=chat_id,
        cluster_id=cluster_id,
        similarity=float(unit @ centroid),
        new_cluster=True,
    )
    return state, AssignOutcome(assignments=(founder, *founded, *rehomed), born=cluster_id)


def rehome_outliers(
    state: ClusterState, *, params: AssignParams, rows: Sequence[int] | None = None
) -> tuple[ClusterState, list[Assignment]]:
    """Outliers in the pool that meet a cluster's join threshold now join it.

    Each joins the most similar of the clusters open to it, judged against the state as it is
    on entry (all at once, so the pool's order does not matter). Called after a birth (for the
    newborn) and after a rebuild (for every cluster).

    Args:
        state: The current state; updated in place and returned.
        params: Thresholds.
        rows: The clusters to try (rows of state); None: all of them.

    Returns:
        The state, and an assignment for each outlier that joined, in pool order, with its
        similarity to its cluster's centroid after the moves.
    """
    if not state.outlier_ids or not state.ids:
        return state, []
    candidates = np.arange(len(state.ids)) if rows is None else np.asarray(rows, dtype=np.intp)
    thresholds = state.join_thresholds(params)[candidates]
    centres = state.centroids[candidates]  # a copy: joins below do not move it
    movers: list[tuple[int, int]] = []  # (pool index, cluster row)
    for start in range(0, len(state.outlier_ids), 1024):  # bounded memory for a large pool
        sims = state.outlier_vectors[start : start + 1024] @ centres.T
        open_to = sims >= thresholds[None, :]
        best = np.argmax(np.where(open_to, sims, -np.inf), axis=1)
        for i in np.flatnonzero(open_to.any(axis=1)):
            row = int(candidates[best[i]])
            movers.append((start + int(i), row))
            state.add_member(row, state.outlier_vectors[start + i], float(sims[i, best[i]]))
    if not movers:
        return state, []
    centroids = state.centroids
    moved = [
        Assignment(
            chat_id=state.outlier_ids[i],
            cluster_id=state.ids[row],
            similarity=float(state.outlier_vectors[i] @ centroids[row]),
        )
        for i, row in movers
    ]
    keep = np.ones(len(state.outlier_ids), dtype=bool)
    keep[[i for i, _ in movers]] = False
    state.keep_outliers(keep)
    return state, moved


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
