"""Apply a recompute's plan while the stream keeps assigning, pausing it only to swap.

Outside the write lock: every snapshot conversation whose cluster changed is moved (its
cluster_id rewritten in place, no payload read), the new cluster records are written, and the
conversations written since the snapshot (a store journal names them) are placed, round after
round, until few are left. Under the lock: those few are placed, the cluster records get their
final counts, and the clusters no longer planned are deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import ClusterStore
from kura_stream.records import ClusterMeta, ClusterPoint
from kura_stream.service.naming import settle_name
from kura_stream.service.recompute_snapshot import (
    BLOCK,
    ROWS,
    RecomputePlan,
    member_blocks,
    move_conversations,
)
from kura_stream.stages.assign import AssignParams, ClusterState
from kura_stream.stages.cluster import normalise
from kura_stream.stages.member_blocks import MemberBlock, block_totals, unit_rows
from kura_stream.types import Cluster

CLUSTER_META_FIELDS = ("name", "description", "slug", "count", "parent_id", "level", "x", "y")
"""The fields a recompute's Cluster gives a stored cluster's meta."""

FloatArray = npt.NDArray[np.float32]


class Journal(Protocol):
    """The chat ids written or deleted since it was opened."""

    def drain(self) -> list[str]:
        """The chat ids noted so far, emptying the journal."""
        ...


@runtime_checkable
class Journaled(Protocol):
    """A store that keeps journals of the conversations written (the embedded store does)."""

    def watch_conversations(self) -> Journal:
        """A journal of the chat ids written or deleted from now on."""
        ...

    def stop_watching(self, journal: object) -> None:
        """Stop noting writes in journal."""
        ...


@runtime_checkable
class MetaStore(Protocol):
    """A store that reads cluster metas without their centroids."""

    def cluster_metas(self) -> dict[str, ClusterMeta]:
        """Every stored cluster's meta by id."""
        ...


class Applying:
    """One plan being applied: what moved, what arrived after the snapshot, what went."""

    def __init__(self, store: ClusterStore, plan: RecomputePlan) -> None:
        """Apply plan to store."""
        self.store = store
        self.plan = plan
        self.late: dict[str, tuple[int, FloatArray]] = {}
        """Conversations stored after the snapshot: their new base cluster (a label) and unit
        vector."""
        self.gone: set[int] = set()
        """Snapshot rows deleted since."""
        self._matrix = np.stack([plan.base_centroids[cid] for cid in plan.ids])
        self._centroids: dict[str, FloatArray] | None = None
        self._written: dict[str, ClusterMeta] = {}

    def write_members(self) -> None:
        """Move every snapshot conversation whose cluster changed; write the cluster records."""
        snap, ids = self.plan.snapshot, self.plan.ids
        for start in range(0, len(snap), 8 * ROWS):
            end = start + 8 * ROWS
            new = [ids[label] for label in self.plan.labels[start:end].tolist()]
            old = snap.clusters[start:end]
            moves = {
                chat_id: target
                for chat_id, was, target in zip(snap.chat_ids[start:end], old, new, strict=True)
                if was != target
            }
            move_conversations(self.store, moves)
        self.write_clusters(final=False)

    def replay(self, chat_ids: Sequence[str]) -> None:
        """Place conversations written since the snapshot (read back from the store).

        A snapshot conversation rewritten by the stream gets its planned cluster again; one
        new since joins the nearest new base centroid; one deleted is counted out.
        """
        for start in range(0, len(chat_ids), 2000):
            wanted = chat_ids[start : start + 2000]
            points = self.store.get_conversations(wanted)
            if points:
                vectors = np.stack([np.asarray(p.vector, np.float32) for p in points])
                clusters = [p.cluster_id for p in points]
                arrived = np.full(len(points), -np.inf)
                self._place(MemberBlock([p.chat_id for p in points], clusters, vectors, arrived))
            found = {p.chat_id for p in points}
            for chat_id in wanted:
                if chat_id not in found:
                    self._forget(chat_id)

    def replay_all(self) -> None:
        """Place every stored conversation (a store without journals: the whole store is read)."""
        seen: set[int] = set()
        for block in member_blocks(self.store):
            self._place(block)
            rows = (self.plan.snapshot.row_of(c) for c in block.chat_ids)
            seen.update(r for r in rows if r is not None)
        self.gone = set(range(len(self.plan.snapshot))) - seen

    def _place(self, block: MemberBlock) -> None:
        moves: dict[str, str | None] = {}
        fresh: list[int] = []
        for i, (chat_id, current) in enumerate(zip(block.chat_ids, block.cluster_ids, strict=True)):
            row = self.plan.snapshot.row_of(chat_id)
            if row is None:
                fresh.append(i)
                continue
            self.gone.discard(row)
            target = self.plan.cluster_of(row)
            if current != target:
                moves[chat_id] = target
        if fresh:
            unit = unit_rows(block.vectors[fresh])
            labels = np.argmax(unit @ self._matrix.T, axis=1)
            for i, label, vector in zip(fresh, labels.tolist(), unit, strict=True):
                chat_id = block.chat_ids[i]
                self.late[chat_id] = (label, vector)
                if block.cluster_ids[i] != self.plan.ids[label]:
                    moves[chat_id] = self.plan.ids[label]
        move_conversations(self.store, moves)

    def _forget(self, chat_id: str) -> None:
        row = self.plan.snapshot.row_of(chat_id)
        if row is None:
            self.late.pop(chat_id, None)
        else:
            self.gone.add(row)

    def counts(self) -> npt.NDArray[np.int64]:
        """Members of each new base cluster now."""
        size = len(self.plan.ids)
        counts = self.plan.counts.copy()
        if self.gone:
            counts -= np.bincount(self.plan.labels[sorted(self.gone)], minlength=size)
        if self.late:
            counts += np.bincount([label for label, _ in self.late.values()], minlength=size)
        return counts

    def write_clusters(self, *, final: bool) -> dict[str, ClusterMeta]:
        """Write the planned cluster records and delete the clusters not planned.

        Names and flags set meanwhile (by the namers) are read back and kept. The final
        write, under the lock, rewrites only the records that changed since the first (the
        stream's counts, a name): a few hundred at most, no vector read.

        Returns:
            Every planned cluster's meta as stored now.
        """
        if self._centroids is None:
            self._centroids = _planned_centroids(self.plan)
        counts = dict(zip(self.plan.ids, self.counts().tolist(), strict=True))
        previous = _stored_metas(self.store)
        metas: dict[str, ClusterMeta] = {}
        records = []
        for c in self.plan.clusters:
            stored = previous.get(c.id)
            metas[c.id] = _applied_meta(c, stored, counts.get(c.id, 0), self.plan)
            if metas[c.id] != stored or stored != self._written.get(c.id):
                records.append(ClusterPoint(c.id, self._centroids[c.id], metas[c.id]))
        self.store.upsert_clusters(records)
        self._written |= {r.cluster_id: r.meta for r in records}
        planned = {c.id for c in self.plan.clusters}
        self.store.delete_clusters([cid for cid in previous if cid not in planned])
        return metas

    def state(self, params: AssignParams) -> ClusterState:
        """The assign state of the snapshot as planned (built outside the lock)."""
        totals = block_totals(
            self.plan.snapshot.vectors.shape[1],
            _PlannedBlocks(self.plan),
            pool=params.max_outlier_pool,
            window=params.birth_window,
            reread=True,
        )
        return ClusterState.from_totals(totals.sums.shape[1], totals, params=params)

    def settle(self, state: ClusterState) -> ClusterState:
        """The state with the conversations deleted and arrived since the snapshot."""
        rows = {cid: i for i, cid in enumerate(state.ids)}
        snap = self.plan.snapshot
        for row in sorted(self.gone):
            vector = unit_rows(snap.vectors[row : row + 1])[0]
            state.remove_member(rows[self.plan.cluster_of(row)], vector)
        for label, vector in self.late.values():
            at = rows[self.plan.ids[label]]
            state.add_member(at, vector, float(state.centroids[at] @ vector))
        return state


class _PlannedBlocks:
    """The snapshot with its planned clusters, as blocks (re-readable: it is in memory)."""

    def __init__(self, plan: RecomputePlan) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator[MemberBlock]:
        snap, ids = self.plan.snapshot, self.plan.ids
        for start in range(0, len(snap), BLOCK):  # small steps: this runs at the peak
            end = min(start + BLOCK, len(snap))
            yield MemberBlock(
                snap.chat_ids[start:end],
                [ids[label] for label in self.plan.labels[start:end].tolist()],
                snap.vectors[start:end],
                np.full(end - start, -np.inf),
            )


def apply_recompute(store: ClusterStore, plan: RecomputePlan) -> int:
    """Write a plan at once: conversations moved, cluster records replaced.

    Conversations stored after the snapshot are placed on the nearest new base centroid (the
    whole store is read to find them). Call under the write lock, then reload the assigner.

    Returns:
        The number of conversations that arrived during the recompute.
    """
    applying = Applying(store, plan)
    applying.write_members()
    applying.replay_all()
    applying.write_clusters(final=True)
    return len(applying.late)


def _applied_meta(
    cluster: Cluster, stored: ClusterMeta | None, count: int, plan: RecomputePlan
) -> ClusterMeta:
    """A cluster's meta as a recompute writes it: the plan's fields over what is stored.

    A base cluster counts the members the apply placed in it; one new to the store starts
    named and announced at that count.
    """
    fields = {k: getattr(cluster, k) for k in CLUSTER_META_FIELDS}
    meta = (stored or ClusterMeta()).model_copy(update=fields)
    if cluster.level != 0:
        return meta
    update: dict[str, int] = {"count": count}
    if stored is None:
        update |= {"named_count": count, "announced_count": count}
    meta = meta.model_copy(update=update)
    return settle_name(meta, stored, named=cluster.id in plan.named, by=plan.namer)


def _stored_metas(store: ClusterStore) -> dict[str, ClusterMeta]:
    """Every stored cluster's meta (without reading the centroids where the store can)."""
    if isinstance(store, MetaStore):
        return store.cluster_metas()
    return {c.cluster_id: c.meta for c in store.list_clusters()}


def _planned_centroids(plan: RecomputePlan) -> dict[str, FloatArray]:
    """Every planned cluster's centroid.

    A base cluster's own; a parent's, the mean of the base clusters under it, by their counts.
    """
    children: dict[str | None, list[Cluster]] = {}
    for c in plan.clusters:
        children.setdefault(c.parent_id, []).append(c)
    centroids = dict(plan.base_centroids)
    dim = len(next(iter(plan.base_centroids.values())))

    def total(cluster_id: str) -> npt.NDArray[np.float64]:
        out = np.zeros(dim)
        for child in children.get(cluster_id, []):
            if child.id in plan.base_centroids:
                out += plan.base_centroids[child.id] * max(child.count, 1)
            else:
                out += total(child.id)
        return out

    for c in plan.clusters:
        if c.id not in centroids:
            centroids[c.id] = normalise(total(c.id)[None, :].astype(np.float32))[0]
    return centroids
