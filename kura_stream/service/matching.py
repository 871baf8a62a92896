"""Keep cluster identities across a recompute: match old clusters to new ones by shared members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
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
    old_ids = sorted({c for c in old.values() if c is not None})
    new_labels = sorted(set(new.values()))
    o_index = {c: i for i, c in enumerate(old_ids)}
    n_index = {label: j for j, label in enumerate(new_labels)}
    overlap = np.zeros((len(old_ids), len(new_labels)), dtype=np.int64)
    first_seen: dict[tuple[int, int], int] = {}  # (new label, old row) -> first position
    for position, (chat_id, label) in enumerate(new.items()):
        previous = old.get(chat_id)
        if previous is not None:
            overlap[o_index[previous], n_index[label]] += 1
            first_seen.setdefault((label, o_index[previous]), position)
    old_sizes = overlap.sum(axis=1)
    counted = Counter(new.values())
    new_sizes = np.array([counted[label] for label in new_labels])
    ids: dict[int, str] = {}
    if overlap.size:
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            shared = overlap[r, c]
            if shared and (
                shared >= min_share * new_sizes[c] or shared >= min_share * old_sizes[r]
            ):
                ids[new_labels[c]] = old_ids[r]
    result = Matching(ids=ids)
    first_member: dict[int, str] = {}
    for chat_id in sorted(new):
        first_member.setdefault(new[chat_id], chat_id)
    kept = set(ids.values())
    for label in new_labels:
        if label in ids:
            continue
        fresh = cluster_id_for(f"recompute:{first_member[label]}")
        ids[label] = fresh
        # The old cluster most of its members came from (on a tie, the one seen first).
        sources = overlap[:, n_index[label]]
        if sources.size and sources.max() > 0:
            tied = np.flatnonzero(sources == sources.max())
            source = old_ids[min(tied.tolist(), key=lambda row: first_seen[(label, row)])]
            if source in kept:
                result.split_from[fresh] = source
                continue
        result.created.append(fresh)
    survivors = set(ids.values())
    for old_id in old_ids:
        if old_id in survivors:
            continue
        column = int(np.argmax(overlap[o_index[old_id]]))
        result.merged_into[old_id] = ids[new_labels[column]]
    return result
