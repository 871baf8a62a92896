"""Write a batch result to a folder (ours and Kura's web UI files) and read clusters.json back."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from kura_stream.privacy import is_shown, scrub, scrub_conversation, visible_name
from kura_stream.tree import walk
from kura_stream.types import Assignment, Cluster, Conversation, MetadataValue, Summary

logger = logging.getLogger(__name__)

CLUSTER_FIELDS = ("id", "name", "description", "slug", "count", "parent_id", "level", "x", "y")
"""The keys of every object in clusters.json, in order."""

KURA_DIR = "kura"
"""Subfolder holding Kura's checkpoint files; point Kura's web UI (or `kura start-app --dir`)
at it and load conversations.json, summaries.jsonl and dimensionality.jsonl."""

_CLUSTER_LIST = TypeAdapter(list[Cluster])


@dataclass(frozen=True)
class ExportPaths:
    """The files one export wrote."""

    clusters: Path
    assignments: Path
    summaries: Path
    kura_conversations: Path
    kura_summaries: Path
    kura_clusters: Path
    kura_meta_clusters: Path
    kura_dimensionality: Path


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write then rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonl(objects: Iterable[Any]) -> Iterator[str]:
    for obj in objects:
        yield json.dumps(obj, ensure_ascii=False) + "\n"


def _kura_metadata(metadata: Mapping[str, MetadataValue]) -> dict[str, MetadataValue]:
    """Kura's metadata allows no null values (its web UI refuses the whole file)."""
    return {k: v for k, v in metadata.items() if v is not None}


def _assignment_map(
    assignments: Sequence[Assignment] | Mapping[str, str | None],
) -> dict[str, str | None]:
    if isinstance(assignments, Mapping):
        return dict(assignments)
    # A stream may move a conversation more than once: its latest assignment stands.
    return {a.chat_id: a.cluster_id for a in assignments}


def _shown(cluster: Cluster, min_size_shown: int) -> Cluster:
    if is_shown(cluster, min_size_shown):
        return cluster
    name = visible_name(cluster, min_size_shown)
    return cluster.model_copy(update={"name": name, "description": "", "slug": ""})


def _slug(cluster: Cluster) -> str:
    if cluster.slug:
        return cluster.slug
    words = "".join(ch if ch.isalnum() else " " for ch in cluster.name.lower()).split()
    return "_".join(words[:3])


def _chat_ids(
    ordered: Sequence[tuple[Cluster, int, bool]], members: Mapping[str, list[str]]
) -> dict[str, list[str]]:
    """Kura's chat_ids: a base cluster's own, a meta cluster's the union of its subtree's."""
    result: dict[str, list[str]] = {c.id: list(members.get(c.id, ())) for c, _, _ in ordered}
    # Deepest first, so a parent gathers its children's ids after they have gathered theirs.
    for cluster, _, _ in sorted(ordered, key=lambda t: -t[1]):
        parent = cluster.parent_id
        if parent is not None and parent in result and parent != cluster.id:
            result[parent].extend(result[cluster.id])
    return {cid: list(dict.fromkeys(ids)) for cid, ids in result.items()}


def _summary_text(summary: Summary) -> Summary:
    return summary.model_copy(
        update={
            "summary": scrub(summary.summary),
            "request": scrub(summary.request) if summary.request else summary.request,
            "task": scrub(summary.task) if summary.task else summary.task,
            "assistant_errors": tuple(scrub(e) for e in summary.assistant_errors),
        }
    )


def _kura_summary(summary: Summary) -> dict[str, Any]:
    """Kura's ConversationSummary fields (its web UI reads chat_id, summary and metadata)."""
    return {
        "summary": summary.summary,
        "request": summary.request,
        "topic": summary.topic,
        "languages": list(summary.languages) or None,
        "task": summary.task,
        "concerning_score": summary.concerning_score,
        "user_frustration": summary.user_frustration,
        "assistant_errors": list(summary.assistant_errors) or None,
        "chat_id": summary.chat_id,
        "metadata": _kura_metadata(summary.metadata),
        "embedding": None,
    }


def export_paths(dest: Path | str) -> ExportPaths:
    """The files an export to dest writes."""
    root = Path(dest)
    kura = root / KURA_DIR
    return ExportPaths(
        clusters=root / "clusters.json",
        assignments=root / "assignments.jsonl",
        summaries=root / "summaries.jsonl",
        kura_conversations=kura / "conversations.json",
        kura_summaries=kura / "summaries.jsonl",
        kura_clusters=kura / "clusters.jsonl",
        kura_meta_clusters=kura / "meta_clusters.jsonl",
        kura_dimensionality=kura / "dimensionality.jsonl",
    )


def export_batch(
    dest: Path | str,
    *,
    clusters: Sequence[Cluster],
    assignments: Sequence[Assignment] | Mapping[str, str | None],
    summaries: Sequence[Summary] = (),
    conversations: Sequence[Conversation] = (),
    min_size_shown: int,
    scrub_text: bool = True,
) -> ExportPaths:
    """Write a batch result to a folder.

    Files written:

    - clusters.json: a JSON list of {id, name, description, slug, count, parent_id, level, x,
      y}, depth-first from the largest top-level cluster.
    - assignments.jsonl: {chat_id, cluster_id} per conversation (cluster_id null for an
      outlier).
    - summaries.jsonl: one Summary per line.
    - kura/: Kura's checkpoint files, which its web UI loads: conversations.json (Kura's
      conversation dump), summaries.jsonl (ConversationSummary), dimensionality.jsonl
      (ProjectedCluster: chat_ids, x_coord, y_coord, and level counted from the root as Kura
      does, not from the base as ours), plus clusters.jsonl (base clusters) and
      meta_clusters.jsonl (all clusters) as Kura's Cluster, for its visualise_clusters.

    Args:
        dest: The folder (created if missing); existing files of these names are replaced.
        clusters: Clusters of every level.
        assignments: Assignments, or a chat_id -> base cluster_id mapping.
        summaries: Summaries to include.
        conversations: Conversations to include (Kura's UI shows them under their clusters).
        min_size_shown: Clusters smaller than this get a placeholder name and no description
            (Clio's privacy floor); pass Settings().clustering.min_cluster_size_shown.
        scrub_text: Scrub personal data from conversation and summary text before writing.

    Returns:
        The paths written.
    """
    paths = export_paths(dest)
    ordered = [(_shown(c, min_size_shown), depth, last) for c, depth, last in walk(clusters)]
    assigned = _assignment_map(assignments)
    known = {c.id for c in clusters}
    members: dict[str, list[str]] = {}
    for chat_id, cluster_id in assigned.items():
        if cluster_id is not None:
            members.setdefault(cluster_id, []).append(chat_id)
    unknown = set(members) - known
    if unknown:
        logger.warning("assignments name %d clusters not in the export", len(unknown))
    chat_ids = _chat_ids(ordered, members)

    _write_atomic(
        paths.clusters,
        [json.dumps([c.model_dump(include=set(CLUSTER_FIELDS)) for c, _, _ in ordered]) + "\n"],
    )
    _write_atomic(
        paths.assignments,
        _jsonl({"chat_id": k, "cluster_id": v} for k, v in assigned.items()),
    )
    texts = [_summary_text(s) for s in summaries] if scrub_text else list(summaries)
    _write_atomic(paths.summaries, (s.model_dump_json() + "\n" for s in texts))

    convs = [scrub_conversation(c) for c in conversations] if scrub_text else conversations
    dump = [{**c.model_dump(mode="json"), "metadata": _kura_metadata(c.metadata)} for c in convs]
    _write_atomic(paths.kura_conversations, [json.dumps(dump, ensure_ascii=False)])
    _write_atomic(paths.kura_summaries, _jsonl(_kura_summary(s) for s in texts))

    def kura_cluster(c: Cluster) -> dict[str, Any]:
        ids = chat_ids[c.id]
        parent = c.parent_id if c.parent_id in known else None
        return {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "slug": _slug(c),
            "chat_ids": ids,
            "parent_id": parent,
            "count": len(ids),
        }

    _write_atomic(
        paths.kura_clusters, _jsonl(kura_cluster(c) for c, _, _ in ordered if c.level == 0)
    )
    _write_atomic(paths.kura_meta_clusters, _jsonl(kura_cluster(c) for c, _, _ in ordered))
    _write_atomic(
        paths.kura_dimensionality,
        _jsonl(
            {**kura_cluster(c), "x_coord": c.x, "y_coord": c.y, "level": depth}
            for c, depth, _ in ordered
        ),
    )
    logger.info(
        "exported %d clusters, %d assignments, %d summaries, %d conversations to %s",
        len(ordered),
        len(assigned),
        len(texts),
        len(dump),
        dest,
    )
    return paths


def read_clusters(path: Path | str) -> list[Cluster]:
    """Load clusters.json back into Cluster objects.

    Args:
        path: The clusters.json file, or the export folder holding it.

    Returns:
        The clusters, in file order.

    Raises:
        pydantic.ValidationError: The file does not hold valid clusters.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "clusters.json"
    return _CLUSTER_LIST.validate_json(file.read_bytes())


def read_assignments(path: Path | str) -> dict[str, str | None]:
    """Load assignments.jsonl (a file or the export folder) as chat_id -> cluster_id."""
    file = Path(path)
    if file.is_dir():
        file = file / "assignments.jsonl"
    result: dict[str, str | None] = {}
    with file.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                result[str(row["chat_id"])] = row["cluster_id"]
    return result
