"""Name live clusters: new ones, those that doubled, and (names-only LLM) offline-named ones.

A stored cluster's meta says who gave the current name (`namer`: offline, llm or manual), so
an LLM name is given once and then only when the cluster doubles, and a namer that failed
(`naming_failed_count`) is tried again only once the cluster has doubled since.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from kura_stream.privacy import is_shown
from kura_stream.protocols import ClusterNamer, ClusterStore
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint, NamerKind
from kura_stream.stages.name import MAX_CONTRAST, MAX_MEMBERS
from kura_stream.types import ClusterEvent, ClusterEventKind, ClusterLabel, Summary

logger = logging.getLogger(__name__)

CONTRAST_CLUSTERS = 5
"""The live namer's contrast comes from the members of this many nearest clusters."""

NAMER_KEY = "namer"
"""Key of the namer's kind in a renamed event's detail."""

Publish = Callable[[list[ClusterEvent]], Awaitable[None]]
"""Sends renamed events on (the name consumer: to the cluster-events topic)."""

_ALWAYS = {ClusterEventKind.CREATED, ClusterEventKind.GROWN}
_AFTER_RECOMPUTE = {ClusterEventKind.RENAMED, ClusterEventKind.SPLIT, ClusterEventKind.MERGED}


def namer_kind(namer: ClusterNamer) -> NamerKind:
    """The kind of a namer: llm when its identity starts with "llm:", else offline."""
    return "llm" if namer.name.startswith("llm:") else "offline"


def naming_due(
    meta: ClusterMeta,
    *,
    min_size_shown: int,
    kind: NamerKind = "offline",
    only_unnamed: bool = False,
) -> bool:
    """Whether a cluster should be (re)named by a namer of `kind`.

    Due when big enough to show and not failed at (less than twice) this size already, and:
    unnamed; or, for an LLM namer, named offline (names-only LLM mode upgrades those once);
    or doubled since it was last named.

    Args:
        meta: The cluster as stored.
        min_size_shown: Clusters smaller than this are never named.
        kind: The namer's kind (see namer_kind).
        only_unnamed: Due only if the cluster has no name at all.
    """
    count = meta.count
    if not is_shown(meta.cluster(""), min_size_shown):
        return False
    failed = meta.naming_failed_count
    if failed and count < 2 * failed:
        return False
    if not meta.name:
        return True
    if only_unnamed:
        return False
    if kind == "llm" and (meta.namer or "offline") == "offline":
        return True
    return count >= 2 * meta.named_count


def settle_name(
    meta: ClusterMeta, stored: ClusterMeta | None, *, named: bool, by: NamerKind
) -> ClusterMeta:
    """The name fields of a base cluster a recompute writes, settled in its new meta.

    A cluster the recompute named records its namer; any other keeps its name as stored now,
    not at the snapshot: a name given while the recompute ran (an LLM name landing in the
    background, a rename by hand) is never overwritten by an offline one.

    Args:
        meta: The meta being written (count already set).
        stored: The cluster's meta in the store now (None if new).
        named: Whether the recompute named the cluster.
        by: The kind of the recompute's namer.

    Returns:
        meta with its name fields settled.
    """
    fresh = stored is not None and stored.namer in ("llm", "manual") and by != "llm"
    if named and not fresh:
        return meta.model_copy(
            update={"namer": by, "named_count": meta.count, "naming_failed_count": 0}
        )
    if stored is not None and stored.name:
        keys = ("name", "description", "slug", "namer", "named_count")
        return meta.model_copy(update={k: getattr(stored, k) for k in keys})
    return meta


def clusters_to_name(events: Iterable[ClusterEvent], *, after_recompute: bool) -> list[str]:
    """The clusters a batch of cluster events may call for naming, first seen first.

    Args:
        events: Cluster events, in topic order.
        after_recompute: Also the clusters a recompute named (its renamed events, and the
            clusters its splits and merges made): names-only LLM mode gives them LLM names.
            Only events that carry a request id count here, so renamed events of the name
            consumer itself or of a person never call for naming again.
    """
    ids: list[str] = []
    for event in events:
        if event.kind in _ALWAYS:
            found = [event.cluster_id]
        elif after_recompute and event.request_id and event.kind in _AFTER_RECOMPUTE:
            found = [event.cluster_id, *event.related]
        else:
            continue
        ids.extend(cid for cid in found if cid and cid not in ids)
    return ids


def _summaries(points: Iterable[ConversationPoint]) -> list[Summary]:
    out = []
    for p in points:
        data = p.payload.get("summary")
        if isinstance(data, dict):
            out.append(Summary.model_validate(data))
    return out


def _sample(store: ClusterStore, cluster: ClusterPoint) -> tuple[list[Summary], list[Summary]]:
    """Up to MAX_MEMBERS members and MAX_CONTRAST of the nearest other clusters' (Clio's)."""
    members = _summaries(store.conversations_in_cluster(cluster.cluster_id, MAX_MEMBERS))
    contrast: list[Summary] = []
    per = MAX_CONTRAST // CONTRAST_CLUSTERS
    for hit in store.search_clusters(cluster.centroid, CONTRAST_CLUSTERS + 1):
        if hit.id == cluster.cluster_id or len(contrast) >= MAX_CONTRAST:
            continue
        contrast += _summaries(store.conversations_in_cluster(hit.id, per))
    return members, contrast[:MAX_CONTRAST]


async def name_if_due(
    store: ClusterStore,
    cluster_id: str,
    *,
    namer: ClusterNamer,
    min_size_shown: int,
    write_lock: asyncio.Lock,
    only_unnamed: bool = False,
) -> ClusterEvent | None:
    """Name the cluster if due (see naming_due) and store the name with its namer's kind.

    A namer that raises leaves the name as it is: the failure is logged and recorded, and the
    cluster is not tried again before it has doubled.

    Returns:
        The renamed event, or None when nothing was named.
    """
    found = store.get_clusters([cluster_id])
    kind = namer_kind(namer)
    if not found or not naming_due(
        found[0].meta, min_size_shown=min_size_shown, kind=kind, only_unnamed=only_unnamed
    ):
        return None
    members, contrast = _sample(store, found[0])
    try:
        label = await namer.label(members, contrast)
    except Exception as err:  # a failing namer must not stop the stream nor loop on a cluster
        logger.warning("naming cluster %s with %s failed: %r", cluster_id, namer.name, err)
        await _update(store, cluster_id, write_lock, _failed)
        return None
    named = _named(label, kind, was_manual=found[0].meta.namer == "manual")
    meta = await _update(store, cluster_id, write_lock, named)
    if meta is None:
        return None
    logger.info("named cluster %s (%s): %s", cluster_id, kind, label.name)
    return ClusterEvent(
        kind=ClusterEventKind.RENAMED,
        cluster_id=cluster_id,
        count=meta.count,
        name=label.name,
        detail={NAMER_KEY: kind},
    )


def _failed(meta: ClusterMeta) -> ClusterMeta:
    """Records that a namer failed at the cluster's size now."""
    return meta.model_copy(update={"naming_failed_count": meta.count})


def _named(
    label: ClusterLabel, kind: NamerKind, *, was_manual: bool
) -> Callable[[ClusterMeta], ClusterMeta | None]:
    """The change that stores a label; None where a person renamed the cluster meanwhile."""

    def change(meta: ClusterMeta) -> ClusterMeta | None:
        if meta.namer == "manual" and not was_manual:
            return None  # theirs wins
        return meta.model_copy(
            update={
                "name": label.name,
                "description": label.description,
                "slug": label.slug,
                "named_count": meta.count,
                "namer": kind,
                "naming_failed_count": 0,
            }
        )

    return change


async def _update(
    store: ClusterStore,
    cluster_id: str,
    write_lock: asyncio.Lock,
    change: Callable[[ClusterMeta], ClusterMeta | None],
) -> ClusterMeta | None:
    """Apply change to the cluster's current meta under the lock.

    Returns:
        The meta written, or None if the cluster is gone (merged away by a recompute
        meanwhile) or change returned None.
    """
    async with write_lock:
        current = store.get_clusters([cluster_id])
        if not current:
            return None
        meta = change(current[0].meta)
        if meta is None:
            return None
        store.upsert_clusters([replace(current[0], meta=meta)])
    return meta


async def name_due_clusters(
    store: ClusterStore,
    cluster_ids: Sequence[str],
    *,
    namer: ClusterNamer,
    min_size_shown: int,
    write_lock: asyncio.Lock,
    publish: Publish,
    background_namer: ClusterNamer | None = None,
) -> list[ClusterEvent]:
    """The name consumer's work on one batch: name what is due, publish renamed events.

    With a background namer (names-only LLM mode), unnamed clusters first get `namer`'s
    (offline) name, published at once; then the background namer renames the due clusters
    one by one, largest first, each renamed event published as soon as its name lands.

    Args:
        store: Clusters and conversations.
        cluster_ids: Candidates (see clusters_to_name); those not due are skipped.
        namer: Names clusters (the only namer without a background one).
        min_size_shown: Clusters smaller than this are never named.
        write_lock: Serialises writes with the assigner and the recompute.
        publish: Sends renamed events on.
        background_namer: The slow namer (the LLM) that replaces quick names.

    Returns:
        Every renamed event published, in order.
    """
    events: list[ClusterEvent] = []
    for cid in cluster_ids:
        event = await name_if_due(
            store,
            cid,
            namer=namer,
            min_size_shown=min_size_shown,
            write_lock=write_lock,
            only_unnamed=background_namer is not None,
        )
        if event is not None:
            events.append(event)
    if events:
        await publish(list(events))
    if background_namer is None:
        return events
    counts = {c.cluster_id: c.meta.count for c in store.get_clusters(cluster_ids)}
    for cid in sorted((c for c in cluster_ids if c in counts), key=lambda c: -counts[c]):
        event = await name_if_due(
            store, cid, namer=background_namer, min_size_shown=min_size_shown, write_lock=write_lock
        )
        if event is not None:
            await publish([event])
            events.append(event)
    return events
