"""Write a batch result to a folder (ours and Kura's web UI files) and read clusters.json back."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from kura_stream.kura_ui_files import KuraUiFiles, kura_ui_files
from kura_stream.privacy import is_shown, scrub, scrub_conversation, visible_name
from kura_stream.tree import walk
from kura_stream.types import Assignment, Cluster, Conversation, Summary

logger = logging.getLogger(__name__)

CLUSTER_FIELDS = ("id", "name", "description", "slug", "count", "parent_id", "level", "x", "y")
"""The keys of every object in clusters.json, in order."""

KURA_DIR = "kura"
"""Subfolder holding the files Kura's web UI opens (how: kura_ui_files.OPEN_IN_KURA_UI)."""

REPORT_FILE = "export_report.json"
"""What the export wrote for Kura's UI and what it left out (KuraUiReport.as_json)."""

_CLUSTER_LIST = TypeAdapter(list[Cluster])


@dataclass(frozen=True)
class ExportPaths:
    """The files one export wrote.

    - clusters.json: a JSON list of {id, name, description, slug, count, parent_id, level, x,
      y}, depth-first from the largest top-level cluster.
    - assignments.jsonl: {chat_id, cluster_id} per conversation (cluster_id null for an
      outlier).
    - summaries.jsonl: one Summary per line.
    - kura/: the files Kura's web UI opens (kura_ui_files.OPEN_IN_KURA_UI says how):
      conversations.json (Kura's conversation dump), summaries.jsonl (ConversationSummary),
      dimensionality.jsonl (ProjectedCluster: chat_ids, x_coord, y_coord, and level counted
      from the root as Kura does, not from the base as ours), plus clusters.jsonl (base
      clusters) and meta_clusters.jsonl (all clusters) as Kura's Cluster. Only summarised
      conversations are written there (Kura's UI refuses one without a summary).
    - export_report.json: counts of what the kura/ files hold and what they left out.
    """

    clusters: Path
    assignments: Path
    summaries: Path
    kura_conversations: Path
    kura_summaries: Path
    kura_clusters: Path
    kura_meta_clusters: Path
    kura_dimensionality: Path
    report: Path


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
        yield json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


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


def _summary_text(summary: Summary) -> Summary:
    return summary.model_copy(
        update={
            "summary": scrub(summary.summary),
            "request": scrub(summary.request) if summary.request else summary.request,
            "task": scrub(summary.task) if summary.task else summary.task,
            "assistant_errors": tuple(scrub(e) for e in summary.assistant_errors),
        }
    )


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
        report=root / REPORT_FILE,
    )


def _members(
    assigned: Mapping[str, str | None], clusters: Sequence[Cluster]
) -> dict[str, list[str]]:
    """Chat ids by cluster id; warns of clusters assigned to that the export does not hold."""
    members: dict[str, list[str]] = {}
    for chat_id, cluster_id in assigned.items():
        if cluster_id is not None:
            members.setdefault(cluster_id, []).append(chat_id)
    unknown = set(members) - {c.id for c in clusters}
    if unknown:
        logger.warning("assignments name %d clusters not in the export", len(unknown))
    return members


def _write_ours(
    paths: ExportPaths,
    ordered: Sequence[Cluster],
    assigned: Mapping[str, str | None],
    summaries: Sequence[Summary],
) -> None:
    """clusters.json, assignments.jsonl and summaries.jsonl."""
    _write_atomic(
        paths.clusters,
        [json.dumps([c.model_dump(include=set(CLUSTER_FIELDS)) for c in ordered]) + "\n"],
    )
    _write_atomic(
        paths.assignments,
        _jsonl({"chat_id": k, "cluster_id": v} for k, v in assigned.items()),
    )
    _write_atomic(paths.summaries, (s.model_dump_json() + "\n" for s in summaries))


def export_batch(
    dest: Path | str,
    *,
    clusters: Sequence[Cluster],
    assignments: Sequence[Assignment] | Mapping[str, str | None],
    summaries: Sequence[Summary] = (),
    conversations: Sequence[Conversation] = (),
    min_size_shown: int,
    scrub_text: bool = True,
    created_at: Mapping[str, datetime] | None = None,
    notes: Mapping[str, int] | None = None,
) -> ExportPaths:
    """Write a batch result to a folder: the files ExportPaths lists.

    Args:
        dest: The folder (created if missing); existing files of these names are replaced.
        clusters: Clusters of every level.
        assignments: Assignments, or a chat_id -> base cluster_id mapping.
        summaries: Summaries to include.
        conversations: Conversations to include (Kura's UI shows them under their clusters).
        min_size_shown: Clusters smaller than this get a placeholder name and no description
            (Clio's privacy floor); pass Settings().clustering.min_cluster_size_shown.
        scrub_text: Scrub personal data from conversation and summary text before writing.
        created_at: Start times of summarised conversations not in `conversations`.
        notes: Counts to add to the report (e.g. messages_truncated).

    Returns:
        The paths written.
    """
    paths = export_paths(dest)
    ordered = [(_shown(c, min_size_shown), depth) for c, depth, _ in walk(clusters)]
    assigned = _assignment_map(assignments)
    members = _members(assigned, clusters)
    texts = [_summary_text(s) for s in summaries] if scrub_text else list(summaries)
    _write_ours(paths, [c for c, _ in ordered], assigned, texts)
    convs = [scrub_conversation(c) for c in conversations] if scrub_text else conversations
    ui = kura_ui_files(ordered, members, texts, convs, created_at=created_at)
    ui.report.notes.update(notes or {})
    _write_kura(paths, ui)
    for problem in ui.report.problems():
        logger.warning("Kura UI files: %s", problem)
    logger.info(
        "exported %d clusters, %d assignments, %d summaries, %d conversations to %s",
        len(ordered),
        len(assigned),
        len(texts),
        ui.report.conversations,
        dest,
    )
    return paths


def _write_kura(paths: ExportPaths, ui: KuraUiFiles) -> None:
    """The kura/ files and the report; strict JSON (no NaN), which is all the UI reads."""
    dump = json.dumps(ui.conversations, ensure_ascii=False, allow_nan=False)
    _write_atomic(paths.kura_conversations, [dump])
    _write_atomic(paths.kura_summaries, _jsonl(ui.summaries))
    _write_atomic(paths.kura_clusters, _jsonl(ui.base_clusters))
    _write_atomic(paths.kura_meta_clusters, _jsonl(ui.all_clusters))
    _write_atomic(paths.kura_dimensionality, _jsonl(ui.projected))
    _write_atomic(paths.report, [json.dumps(ui.report.as_json(), indent=2) + "\n"])


def read_report(path: Path | str) -> dict[str, Any]:
    """Load export_report.json (the file or the export folder holding it)."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_FILE
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


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
