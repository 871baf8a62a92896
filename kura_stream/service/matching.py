"""Keep cluster identities across a recompute: match old clusters to new ones by shared members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from kura_stream.stages.assign import cluster_id_for


@dataclass(frozen=True)
class Matching:
    """How new clusters relate to old ones.

    Attributes:
        ids: New cluster label -> its id (an old id when matched, else a fresh one).
        created: New ids with no old cluster behind them.
        split_from: New id -> the old id most of its members came from, for new clusters
            carved out of an old cluster that lives on under its id.
        merged_into: Old id -> the new id that took most of its members, for old clusters
            that did not survive.
    """

    ids: dict[int, str]
    created: list[str] = field(default_factory=list)
    split_from: dict[str, str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Overlap:
    """Members each old cluster (a row) shares with each new label (a column).

    Attributes:
        old_ids: The old cluster ids, sorted: the rows.
        new_labels: The new labels, sorted: the columns.
        shared: Members in both, per (row, column).
        first_seen: (new label, row) -> position in `new` of the first member they share.
    """

    old_ids: list[str]
    new_labels: list[int]
    shared: npt.NDArray[np.int64]
    first_seen: dict[tuple[int, int], int]


def _overlap(old: Mapping[str, str | None], new: Mapping[str, int]) -> _Overlap:
    old_ids = sorted({c for c in old.values() if c is not None})
    new_labels = sorted(set(new.values()))
    o_index = {c: i for i, c in enumerate(old_ids)}
    n_index = {label: j for j, label in enumerate(new_labels)}
    shared = np.zeros((len(old_ids), len(new_labels)), dtype=np.int64)
    first_seen: dict[tuple[int, int], int] = {}
    for position, (chat_id, label) in enumerate(new.items()):
        previous = old.get(chat_id)
        if previous is not None:
            shared[o_index[previous], n_index[label]] += 1
            first_seen.setdefault((label, o_index[previous]), position)
    return _Overlap(old_ids, new_labels, shared, first_seen)


def _paired(overlap: _Overlap, new: Mapping[str, int], min_share: float) -> dict[int, str]:
    """New label -> old id, for the pairs of maximum total overlap that share enough."""
    old_sizes = overlap.shared.sum(axis=1)
    counted = Counter(new.values())
    new_sizes = np.array([counted[label] for label in overlap.new_labels])
    ids: dict[int, str] = {}
    if overlap.shared.size:
        rows, cols = linear_sum_assignment(overlap.shared, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            shared = overlap.shared[r, c]
            if shared and (
                shared >= min_share * new_sizes[c] or shared >= min_share * old_sizes[r]
            ):
                ids[overlap.new_labels[c]] = overlap.old_ids[r]
    return ids


def _main_source(overlap: _Overlap, column: int) -> str | None:
    """The old cluster most of a new label's members came from (on a tie, the one seen first)."""
    sources = overlap.shared[:, column]
    if not sources.size or sources.max() <= 0:
        return None
    label = overlap.new_labels[column]
    tied = np.flatnonzero(sources == sources.max())
    return overlap.old_ids[min(tied.tolist(), key=lambda row: overlap.first_seen[(label, row)])]


def match_clusters(
    old: Mapping[str, str | None], new: Mapping[str, int], *, min_share: float = 0.5
) -> Matching:
    """Match new cluster labels to old cluster ids by member overlap (Hungarian, max overlap).

    A new cluster keeps an old id when they are paired and the old cluster gave it at least
    `min_share` of its members, or it holds at least `min_share` of the old one's members.

    Args:
        old: chat_id -> old cluster id (None for an outlier).
        new: chat_id -> new cluster label.
        min_share: Overlap share that keeps an identity.

    Returns:
        The matching.
    """
    overlap = _overlap(old, new)
    ids = _paired(overlap, new, min_share)
    result = Matching(ids=ids)
    first_member: dict[int, str] = {}
    for chat_id in sorted(new):
        first_member.setdefault(new[chat_id], chat_id)
    kept = set(ids.values())
    for column, label in enumerate(overlap.new_labels):
        if label in ids:
            continue
        fresh = cluster_id_for(f"recompute:{first_member[label]}")
        ids[label] = fresh
        source = _main_source(overlap, column)
        if source is not None and source in kept:
            result.split_from[fresh] = source
        else:
            result.created.append(fresh)
    survivors = set(ids.values())
    for row, old_id in enumerate(overlap.old_ids):
        if old_id not in survivors:
            column = int(np.argmax(overlap.shared[row]))
            result.merged_into[old_id] = ids[overlap.new_labels[column]]
    return result
