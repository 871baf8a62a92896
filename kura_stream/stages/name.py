"""The naming stage: bounded member and contrast samples per base cluster, given to a namer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kura_stream.protocols import ClusterNamer
from kura_stream.stages.cluster import OUTLIER, normalise
from kura_stream.types import Cluster, ClusterLabel, Summary

logger = logging.getLogger(__name__)

MAX_MEMBERS = 50
"""Members a namer sees of one cluster at most (Clio: 50), in batch and in the stream."""
MAX_CONTRAST = 50
"""Nearest non-members a namer sees at most (Clio: 50), in batch and in the stream."""


@dataclass(frozen=True, eq=False)
class ClusterGroup:
    """A base cluster to name: its members and their embeddings.

    Attributes:
        cluster_id: The cluster's id.
        members: Its summaries, any number.
        vectors: Their embeddings, row i for members[i], shape (len(members), d).
    """

    cluster_id: str
    members: Sequence[Summary]
    vectors: npt.NDArray[np.float32]


@dataclass(frozen=True)
class NamingSample:
    """What the namer sees of one cluster: bounded, whatever the cluster's size.

    Attributes:
        cluster_id: The cluster's id.
        members: Members nearest the centroid first, then a seeded random sample of the rest,
            also nearest first: the whole list is in order of closeness to the centroid.
        contrast: Non-members nearest the cluster's centroid, nearest first.
    """

    cluster_id: str
    members: list[Summary]
    contrast: list[Summary]


@dataclass(frozen=True)
class NamedGroup:
    """The outcome of naming one cluster; failures are kept, not dropped.

    Attributes:
        cluster_id: The cluster's id.
        label: The namer's label; on failure the fallback namer's label or a placeholder.
        error: None on success; else why the namer failed (the label is then a stand-in).
    """

    cluster_id: str
    label: ClusterLabel
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the namer itself produced the label."""
        return self.error is None


def stable_seed(*parts: str | int) -> int:
    """A 32-bit seed from strings and ints, the same in every process (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def group_id(chat_ids: Sequence[str], prefix: str = "b") -> str:
    """A deterministic cluster id from its members' chat ids (order does not matter)."""
    digest = hashlib.blake2b("\n".join(sorted(chat_ids)).encode(), digest_size=6).hexdigest()
    return f"{prefix}-{digest}"


def groups_from_labels(
    summaries: Sequence[Summary], vectors: npt.ArrayLike, labels: npt.ArrayLike
) -> list[ClusterGroup]:
    """Split summaries into ClusterGroups by label (OUTLIER points are left out).

    Args:
        summaries: The summaries, aligned with vectors and labels.
        vectors: Their embeddings, shape (n, d).
        labels: Cluster labels from a clusterer, shape (n,).

    Returns:
        One group per label in ascending label order, each with an id from `group_id`.
    """
    x = normalise(vectors)
    lab = np.asarray(labels, dtype=np.int64)
    if not (len(summaries) == x.shape[0] == lab.shape[0]):
        raise ValueError("summaries, vectors and labels must have the same length")
    groups = []
    for label in sorted(set(lab.tolist()) - {OUTLIER}):
        idx = np.flatnonzero(lab == label)
        members = [summaries[i] for i in idx.tolist()]
        groups.append(ClusterGroup(group_id([s.chat_id for s in members]), members, x[idx]))
    return groups


def _centroid(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    if vectors.shape[0] == 0:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    centre: npt.NDArray[np.float32] = normalise(vectors.mean(axis=0, keepdims=True))[0]
    return centre


def _top(scores: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.intp]:
    """Indices of the n highest scores, best first, ties by index (deterministic)."""
    return np.argsort(-scores, kind="stable")[:n]


def sample_for_naming(
    groups: Sequence[ClusterGroup],
    *,
    max_members: int = MAX_MEMBERS,
    max_contrast: int = MAX_CONTRAST,
    seed: int = 0,
    contrast_groups: int = 10,
) -> list[NamingSample]:
    """Bounded samples per group: Clio's 50 members and 50 nearest non-members.

    Members: half of max_members are those nearest the group's centroid (its core), the rest
    a random sample of the others (listed nearest first, after the core), seeded by (seed,
    cluster_id) so a group's sample does not depend on the other groups or on their order.
    Contrast: non-members most similar to the centroid, searched among the members of the
    `contrast_groups` groups whose centroids are nearest (the nearest non-members lie there;
    scanning every vector for every group would cost groups x vectors).

    Args:
        groups: The groups to sample.
        max_members: At most this many members per sample.
        max_contrast: At most this many non-members per sample.
        seed: Seed of the random part of the member sample.
        contrast_groups: How many neighbouring groups to search for the contrast set.

    Returns:
        One NamingSample per group, in input order.
    """
    if max_members < 1 or max_contrast < 0:
        raise ValueError("max_members must be >= 1 and max_contrast >= 0")
    for g in groups:
        if g.vectors.ndim != 2 or g.vectors.shape[0] != len(g.members):
            raise ValueError(f"group {g.cluster_id}: vectors do not match its members")
    vecs = [normalise(g.vectors) if len(g.members) else g.vectors for g in groups]
    cents = np.stack([_centroid(v) for v in vecs]) if groups else np.zeros((0, 0), np.float32)
    neighbours = nearest_groups(cents, [len(v) > 0 for v in vecs], contrast_groups)
    samples = []
    for gi, group in enumerate(groups):
        members: list[Summary] = []
        contrast: list[Summary] = []
        n = len(group.members)
        if n:
            sims = vecs[gi] @ cents[gi]
            n_near = min(n, max(1, max_members // 2))
            near = _top(sims, n_near)
            rest = np.setdiff1d(np.arange(n), near)
            rng = np.random.default_rng([seed, stable_seed(group.cluster_id)])
            n_rand = min(rest.size, max_members - n_near)
            picked = rng.choice(rest, size=n_rand, replace=False) if n_rand else rest[:0]
            # nearest first in the random part too: namers weigh members by their position
            picked = picked[np.argsort(-sims[picked], kind="stable")]
            members = [group.members[i] for i in (*near.tolist(), *picked.tolist())]
            if max_contrast and neighbours[gi]:
                contrast = _contrast(neighbours[gi], groups, vecs, cents[gi], max_contrast)
        samples.append(NamingSample(group.cluster_id, members, contrast))
    return samples


def nearest_groups(
    cents: npt.NDArray[np.float32], usable: Sequence[bool], m: int, chunk: int = 1024
) -> list[list[int]]:
    """For each centroid, the m most similar other usable centroids, nearest first.

    Similarities come from one matrix product per chunk of rows: thousands of separate
    matrix-vector products are far slower, above all with BLAS threads on busy cores.
    """
    g = cents.shape[0]
    m = min(max(0, m), int(np.sum(usable)))
    out: list[list[int]] = []
    masked = ~np.asarray(usable, dtype=bool)
    for start in range(0, g, chunk):
        block = cents[start : start + chunk] @ cents.T
        block[:, masked] = -np.inf
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -np.inf
        for row in block:
            k = min(m, int(np.isfinite(row).sum()))
            if k == 0:
                out.append([])
                continue
            part = np.argpartition(-row, k - 1)[:k]
            out.append(part[np.lexsort((part, -row[part]))].tolist())
    return out


def _contrast(
    near_groups: Sequence[int],
    groups: Sequence[ClusterGroup],
    vecs: Sequence[npt.NDArray[np.float32]],
    centre: npt.NDArray[np.float32],
    max_contrast: int,
) -> list[Summary]:
    pool = np.concatenate([vecs[j] for j in near_groups])
    owner = np.repeat(np.asarray(near_groups), [len(vecs[j]) for j in near_groups])
    offset = np.concatenate([np.arange(len(vecs[j])) for j in near_groups])
    best = _top(pool @ centre, max_contrast).tolist()
    return [groups[int(owner[b])].members[int(offset[b])] for b in best]


def placeholder_label(cluster_id: str) -> ClusterLabel:
    """The stand-in label of a cluster whose naming failed and had no fallback namer."""
    return ClusterLabel(
        name=f"Unnamed cluster {cluster_id}",
        description="The namer failed on this cluster; it keeps this name until renamed.",
        slug="unnamed_cluster",
    )


async def name_clusters(
    groups: Sequence[ClusterGroup],
    *,
    namer: ClusterNamer,
    max_members: int = MAX_MEMBERS,
    max_contrast: int = MAX_CONTRAST,
    concurrency: int = 4,
    seed: int = 0,
    fallback: ClusterNamer | None = None,
) -> list[NamedGroup]:
    """Name every group from bounded samples, so prompts stay bounded whatever the sizes.

    A group whose namer call raises is not dropped: its NamedGroup carries the error and a
    stand-in label, from `fallback` (e.g. the offline namer) when given and it succeeds, else
    `placeholder_label`. Check `NamedGroup.ok` to tell them apart.

    Args:
        groups: The base clusters to name.
        namer: Produces a label from members and contrast (an LLM or the offline namer).
        max_members: Members shown per group (Clio: 50).
        max_contrast: Nearest non-members shown per group (Clio: 50).
        concurrency: At most this many namer calls at once.
        seed: Seed of the random part of each member sample.
        fallback: Namer used for a group the main namer failed on.

    Returns:
        One NamedGroup per group, in input order.
    """
    samples = sample_for_naming(
        groups, max_members=max_members, max_contrast=max_contrast, seed=seed
    )
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(sample: NamingSample) -> NamedGroup:
        async with gate:
            try:
                if not sample.members:
                    raise ValueError("empty group")
                label = await namer.label(sample.members, sample.contrast)
                return NamedGroup(sample.cluster_id, label)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "naming %s failed with %s: %s", sample.cluster_id, namer.name, reason
                )
                return NamedGroup(sample.cluster_id, await _stand_in(sample, fallback), reason)

    results = await asyncio.gather(*(one(s) for s in samples))
    failed = sum(not r.ok for r in results)
    logger.info("named %d clusters with %s, %d failed", len(results), namer.name, failed)
    return list(results)


async def _stand_in(sample: NamingSample, fallback: ClusterNamer | None) -> ClusterLabel:
    if fallback is not None and sample.members:
        try:
            return await fallback.label(sample.members, sample.contrast)
        except Exception:
            logger.exception("fallback namer %s failed on %s", fallback.name, sample.cluster_id)
    return placeholder_label(sample.cluster_id)


def base_clusters(
    groups: Sequence[ClusterGroup], named: Sequence[NamedGroup]
) -> tuple[list[Cluster], dict[str, npt.NDArray[np.float32]]]:
    """Level-0 Cluster records and their centroids, from named groups (for the hierarchy).

    Args:
        groups: The groups that were named.
        named: name_clusters' result for them (matched by cluster_id).

    Returns:
        The clusters, in group order, and each one's unit centroid by id.
    """
    labels = {n.cluster_id: n.label for n in named}
    clusters = []
    cents = {}
    for g in groups:
        label = labels.get(g.cluster_id) or placeholder_label(g.cluster_id)
        clusters.append(
            Cluster(
                id=g.cluster_id,
                name=label.name,
                description=label.description,
                slug=label.slug,
                count=len(g.members),
            )
        )
        cents[g.cluster_id] = _centroid(normalise(g.vectors))
    return clusters, cents
