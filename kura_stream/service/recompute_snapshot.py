"""A recompute's snapshot of the store, read in blocks: ids, clusters and one vector array.

At a million conversations the vectors alone are 1 GB (256-d float32): they are read into one
array filled block by block, never as a list of records, and no payload is parsed; summaries
are fetched later for the few conversations a namer sees.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import ClusterStore
from kura_stream.records import NamerKind
from kura_stream.service.matching import Matching
from kura_stream.stages.member_blocks import MemberBlock
from kura_stream.types import Cluster, ClusterEvent, Summary

__all__ = [
    "BLOCK",
    "ROWS",
    "BlockStore",
    "MemberBlock",
    "RecomputePlan",
    "Snapshot",
    "StoredSummaries",
    "fetch_summaries",
    "member_blocks",
    "move_conversations",
    "read_snapshot",
    "release_memory",
]

BLOCK = 4096
"""Conversations per block read from the store."""

ROWS = 16384
"""Snapshot rows per step of an in-memory pass (a float64 copy of 16,384 x 384 is 50 MB)."""


@runtime_checkable
class BlockStore(Protocol):
    """A store that reads conversations as blocks and moves them without rewriting payloads."""

    def iter_member_blocks(self, batch_size: int = BLOCK) -> Iterator[MemberBlock]:
        """Every stored conversation, as blocks."""
        ...

    def set_cluster_ids(self, moves: Mapping[str, str | None]) -> None:
        """Move conversations (chat_id -> cluster_id)."""
        ...


class Tally(Protocol):
    """Counts the duplicates recorded in the store over a pass."""

    duplicates: int


def member_blocks(
    store: ClusterStore, batch_size: int = BLOCK, *, tally: Tally | None = None
) -> Iterator[MemberBlock]:
    """The store's conversations as blocks (from whole records where the store has no blocks).

    Args:
        store: The store.
        batch_size: Conversations per block.
        tally: Its duplicates are set to those recorded in the store, as the pass goes.
    """
    if tally is not None:
        tally.duplicates = 0
    for block in _blocks(store, batch_size):
        if tally is not None:
            tally.duplicates += block.duplicates
        yield block


def _blocks(store: ClusterStore, batch_size: int) -> Iterator[MemberBlock]:
    if isinstance(store, BlockStore):
        yield from store.iter_member_blocks(batch_size)
        return
    for batch in store.iter_conversations(batch_size=batch_size):
        if batch:
            yield MemberBlock(
                chat_ids=[p.chat_id for p in batch],
                cluster_ids=[p.cluster_id for p in batch],
                vectors=np.stack([np.asarray(p.vector, np.float32) for p in batch]),
                arrived=np.array([_arrived(p.payload) for p in batch]),
                duplicates=sum(int(p.payload.get("duplicates") or 0) for p in batch),
            )


def _arrived(payload: Mapping[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(payload["assigned_at"])).timestamp()
    except (KeyError, ValueError):
        return float("-inf")


def move_conversations(store: ClusterStore, moves: Mapping[str, str | None]) -> None:
    """Write new clusters of stored conversations (payloads untouched)."""
    if not moves:
        return
    if isinstance(store, BlockStore):
        store.set_cluster_ids(moves)
        return
    ids = list(moves)
    for start in range(0, len(ids), 2000):
        points = store.get_conversations(ids[start : start + 2000])
        store.upsert_conversations(
            [type(p)(p.chat_id, p.vector, moves[p.chat_id], p.payload) for p in points]
        )


@dataclass
class Snapshot:
    """The stored conversations at one moment, row-aligned.

    Attributes:
        chat_ids: Their chat ids.
        clusters: Their clusters then (None: an outlier).
        vectors: (n, dim) float32 unit vectors, one array.
    """

    chat_ids: list[str]
    clusters: list[str | None]
    vectors: npt.NDArray[np.float32]
    _rows: dict[str, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        """Conversations in the snapshot."""
        return len(self.chat_ids)

    def row_of(self, chat_id: str) -> int | None:
        """The row of a chat id, None if it is not in the snapshot."""
        return self.index().get(chat_id)

    def drop_index(self) -> None:
        """Free the index (about 100 MB a million); it is built again when next needed."""
        self._rows = None

    def index(self) -> dict[str, int]:
        """Row by chat id (built on first use: a million entries take a second)."""
        if self._rows is None:
            self._rows = {c: i for i, c in enumerate(self.chat_ids)}
        return self._rows


def read_snapshot(store: ClusterStore) -> Snapshot:
    """Read the store block by block into one vector array (grown only if it filled up)."""
    expected = store.count_conversations()
    vectors = np.empty((expected + expected // 20 + BLOCK, store.dim), np.float32)
    chat_ids: list[str] = []
    clusters: list[str | None] = []
    for block in member_blocks(store):
        end = len(chat_ids) + len(block.chat_ids)
        if end > len(vectors):  # many arrived during the read
            vectors = np.resize(vectors, (2 * end, store.dim))
        vectors[len(chat_ids) : end] = block.vectors
        chat_ids += block.chat_ids
        clusters += block.cluster_ids
    return Snapshot(chat_ids, clusters, vectors[: len(chat_ids)])


def release_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim; else nothing).

    A recompute frees hundreds of MB of small objects between its steps; without this the
    process keeps them, and the next step's peak stands on top of them.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


def fetch_summaries(store: ClusterStore, chat_ids: Sequence[str]) -> dict[str, Summary]:
    """The stored summaries of chat_ids (an empty one where none is stored)."""
    found: dict[str, Summary] = {}
    wanted = list(dict.fromkeys(chat_ids))
    for start in range(0, len(wanted), 1000):
        for point in store.get_conversations(wanted[start : start + 1000]):
            raw = point.payload.get("summary")
            found[point.chat_id] = (
                Summary.model_validate(raw)
                if isinstance(raw, dict)
                else Summary(chat_id=point.chat_id, summary="")
            )
    return {c: found.get(c) or Summary(chat_id=c, summary="") for c in wanted}


@dataclass
class RecomputePlan:
    """What a recompute computed, ready to apply.

    Attributes:
        snapshot: The conversations it clustered.
        labels: (n,) each snapshot row's new base cluster, an index into ids.
        ids: The new base clusters' ids (old ids where matched).
        counts: (len(ids),) members of each in the snapshot.
        base_centroids: Unit centroid of each new base cluster, by id.
        clusters: Every cluster of the new hierarchy, named and placed on the map.
        matching: How the new base clusters relate to the old ones.
        events: The recompute's events.
        seconds: Seconds planning took.
        phases: Seconds per step: snapshot, kmeans, naming, hierarchy, map.
        named: Base clusters this recompute named; the others kept their stored names.
        namer: Kind of the namer that named them, stored with their names.
    """

    snapshot: Snapshot
    labels: npt.NDArray[np.intp]
    ids: list[str]
    counts: npt.NDArray[np.int64]
    base_centroids: dict[str, npt.NDArray[np.float32]]
    clusters: list[Cluster]
    matching: Matching
    events: list[ClusterEvent] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)
    namer: NamerKind = "offline"

    def cluster_of(self, row: int) -> str:
        """The new base cluster of a snapshot row."""
        return self.ids[int(self.labels[row])]


class StoredSummaries:
    """Summaries of stored conversations, fetched in bulk for just the members a namer sees."""

    def __init__(self, store: ClusterStore) -> None:
        """Read from store."""
        self.store = store
        self.found: dict[str, Summary] = {}
        self._recording: set[str] | None = None

    def view(self, chat_ids: list[str]) -> Sequence[Summary]:
        """These conversations' summaries, as a sequence read on demand."""
        return _SummaryView(self, chat_ids)

    def get(self, chat_id: str) -> Summary:
        """One summary (fetched alone if it was not prefetched)."""
        hit = self.found.get(chat_id)
        if hit is not None:
            return hit
        if self._recording is not None:
            self._recording.add(chat_id)
            return Summary(chat_id=chat_id, summary="")
        self.found.update(fetch_summaries(self.store, [chat_id]))
        return self.found[chat_id]

    def prefetch(self, dry_run: Callable[[], object]) -> None:
        """Run dry_run (reading what the namer will read), then fetch all it read at once."""
        self._recording = set()
        try:
            dry_run()
            wanted = sorted(self._recording)
        finally:
            self._recording = None
        self.found.update(fetch_summaries(self.store, wanted))


class _SummaryView(Sequence[Summary]):
    def __init__(self, source: StoredSummaries, chat_ids: list[str]) -> None:
        self._source = source
        self._chat_ids = chat_ids

    def __len__(self) -> int:
        return len(self._chat_ids)

    @overload
    def __getitem__(self, index: int) -> Summary: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Summary]: ...

    def __getitem__(self, index: int | slice) -> Summary | Sequence[Summary]:
        if isinstance(index, slice):
            return [self._source.get(c) for c in self._chat_ids[index]]
        return self._source.get(self._chat_ids[index])
