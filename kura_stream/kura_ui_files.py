"""Kura's web UI files (conversations, summaries, clusters), built so that the UI opens them.

Kura's UI (567-labs/kura, ui/src: types/kura.ts, lib/parse.ts, App.tsx, cluster-details.tsx)
refuses a whole file for one bad value, throws when a conversation has no summary (or an empty
one), and crashes when a cluster names a chat id that is not among the conversations. So every
conversation written has a summary, every cluster's chat ids are conversations written, and
whatever had to be left out or filled in is counted in a KuraUiReport.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kura_stream.types import Cluster, Conversation, Message, MetadataValue, Summary, utcnow

PLACEHOLDER_SUMMARY = "(no summary text)"
"""Written where a summary's text is empty: Kura's UI treats an empty summary as missing."""

STORED_MESSAGE_CHARS = 20_000
"""Message text kept per conversation in the service's store (for exports to Kura's UI): an
embedded record (this, the summary and the vector) stays far below Kafka's 1 MB message limit
even when every character is escaped in JSON, and the store's payloads stay small to read."""

STORED_MESSAGES = 200
"""Messages kept per conversation in the store, whatever their length."""

KURA_UI_FILES = ("conversations.json", "summaries.jsonl", "dimensionality.jsonl")
"""The kura/ files to load in Kura's UI, in the order of its form's three inputs."""

OPEN_IN_KURA_UI = (
    "To open in Kura's web UI: pip install kura (0.5), run `kura start-app` and open "
    "http://localhost:8000; in its form, load kura/conversations.json as the Conversations "
    "File, kura/summaries.jsonl as the Summaries File and kura/dimensionality.jsonl as the "
    "Clusters File, then press Visualise Clusters. The server only serves the page (its --dir "
    "option is not read); the files are read in the browser."
)


@dataclass
class KuraUiReport:
    """What the UI files hold, and what had to be left out or filled in.

    Attributes:
        conversations: Conversations written (each with a summary).
        clusters: Clusters written.
        left_out: Chat ids of conversations with no summary (a failed summary): not written,
            since Kura's UI refuses a conversation without one; they are in no cluster.
        placeholder_summaries: Summaries whose empty text was replaced by PLACEHOLDER_SUMMARY.
        without_messages: Summarised conversations whose messages were not at hand (a store
            written before messages were kept): written with no messages.
        dropped_from_clusters: Cluster members with no summary, left out of chat_ids.
        notes: Counts the caller adds (e.g. messages_truncated).
    """

    conversations: int = 0
    clusters: int = 0
    left_out: list[str] = field(default_factory=list)
    placeholder_summaries: int = 0
    without_messages: int = 0
    dropped_from_clusters: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def as_json(self, *, max_ids: int = 100) -> dict[str, Any]:
        """The report as JSON (at most max_ids of the left-out chat ids listed)."""
        return {
            "conversations": self.conversations,
            "clusters": self.clusters,
            "left_out_without_summary": len(self.left_out),
            "left_out_chat_ids": self.left_out[:max_ids],
            "placeholder_summaries": self.placeholder_summaries,
            "without_messages": self.without_messages,
            "dropped_from_clusters": self.dropped_from_clusters,
            **self.notes,
            "files": [f"kura/{name}" for name in KURA_UI_FILES],
            "how_to_open": OPEN_IN_KURA_UI,
        }

    def problems(self) -> list[str]:
        """One line per thing a user should know about these files (empty when none)."""
        out = []
        if self.left_out:
            out.append(
                f"{len(self.left_out)} conversations have no summary (it failed) and are "
                "left out of the Kura UI files"
            )
        if self.placeholder_summaries:
            out.append(f"{self.placeholder_summaries} empty summaries shown as a placeholder")
        if self.without_messages:
            out.append(
                f"{self.without_messages} conversations have no stored messages (stored before "
                "messages were kept) and show only their summary"
            )
        if self.dropped_from_clusters:
            out.append(f"{self.dropped_from_clusters} cluster members without a summary omitted")
        if self.notes.get("messages_truncated"):
            out.append(
                f"{self.notes['messages_truncated']} conversations' messages were cut to "
                f"{STORED_MESSAGE_CHARS:,} characters when stored"
            )
        return out


@dataclass
class KuraUiFiles:
    """The records of each Kura file, ready to write, and the report."""

    conversations: list[dict[str, Any]]
    summaries: list[dict[str, Any]]
    base_clusters: list[dict[str, Any]]
    all_clusters: list[dict[str, Any]]
    projected: list[dict[str, Any]]
    report: KuraUiReport


def bound_messages(
    messages: Sequence[Message],
    *,
    max_chars: int = STORED_MESSAGE_CHARS,
    max_messages: int = STORED_MESSAGES,
) -> tuple[tuple[Message, ...], bool]:
    """The first messages up to max_chars of text in all; the cut is said in the last one kept.

    Returns:
        The messages kept, and whether anything was cut.
    """
    kept: list[Message] = []
    left = max_chars
    cut_chars = 0
    for message in messages[:max_messages]:
        if left <= 0:
            break
        if len(message.content) > left:
            cut_chars = len(message.content) - left
            kept.append(message.model_copy(update={"content": message.content[:left]}))
            left = 0
        else:
            kept.append(message)
            left -= len(message.content)
    cut_messages = len(messages) - len(kept)
    if not cut_chars and not cut_messages:
        return tuple(messages), False
    note = f" [... cut by kura-stream: {cut_chars:,} more characters, {cut_messages} more messages]"
    if not kept:
        return (), True
    last = kept[-1]
    kept[-1] = last.model_copy(update={"content": last.content + note})
    return tuple(kept), True


def _finite_value(value: MetadataValue) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(not isinstance(v, float) or math.isfinite(v) for v in value)
    return value is not None


def kura_metadata(metadata: Mapping[str, MetadataValue]) -> dict[str, MetadataValue]:
    """Kura's UI allows no null (and JSON no NaN) metadata value: it refuses the whole file."""
    return {k: v for k, v in metadata.items() if _finite_value(v)}


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _kura_summary(summary: Summary) -> dict[str, Any]:
    """Kura's ConversationSummary fields (its web UI reads chat_id, summary and metadata)."""
    return {
        "summary": summary.summary if summary.summary.strip() else PLACEHOLDER_SUMMARY,
        "request": summary.request,
        "topic": summary.topic,
        "languages": list(summary.languages) or None,
        "task": summary.task,
        "concerning_score": summary.concerning_score,
        "user_frustration": summary.user_frustration,
        "assistant_errors": list(summary.assistant_errors) or None,
        "chat_id": summary.chat_id,
        "metadata": kura_metadata(summary.metadata),
        "embedding": None,
    }


def _conversation_records(
    summaries: Sequence[Summary],
    conversations: Sequence[Conversation],
    created_at: Mapping[str, datetime],
    report: KuraUiReport,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One conversation and one summary per summarised chat id, in summary order."""
    by_id = {c.chat_id: c for c in conversations}
    latest = {s.chat_id: s for s in summaries}  # a chat id summarised twice: the last stands
    now = utcnow()
    convs: list[dict[str, Any]] = []
    sums: list[dict[str, Any]] = []
    for chat_id, summary in latest.items():
        conversation = by_id.get(chat_id)
        if conversation is None:
            report.without_messages += 1
            when = created_at.get(chat_id, now)
            record: dict[str, Any] = {
                "chat_id": chat_id,
                "created_at": when.isoformat(),
                "messages": [],
                "metadata": kura_metadata(summary.metadata),
            }
        else:
            record = {
                **conversation.model_dump(mode="json"),
                "metadata": kura_metadata(conversation.metadata),
            }
        if not summary.summary.strip():
            report.placeholder_summaries += 1
        convs.append(record)
        sums.append(_kura_summary(summary))
    report.left_out = list(
        dict.fromkeys(c.chat_id for c in conversations if c.chat_id not in latest)
    )
    report.conversations = len(convs)
    return convs, sums


def _slug(cluster: Cluster) -> str:
    if cluster.slug:
        return cluster.slug
    words = "".join(ch if ch.isalnum() else " " for ch in cluster.name.lower()).split()
    return "_".join(words[:3])


def _chat_ids(
    ordered: Sequence[tuple[Cluster, int]], members: Mapping[str, list[str]]
) -> dict[str, list[str]]:
    """Kura's chat_ids: a base cluster's own, a meta cluster's the union of its subtree's."""
    result: dict[str, list[str]] = {c.id: list(members.get(c.id, ())) for c, _ in ordered}
    # Deepest first, so a parent gathers its children's ids after they have gathered theirs.
    for cluster, _ in sorted(ordered, key=lambda t: -t[1]):
        parent = cluster.parent_id
        if parent is not None and parent in result and parent != cluster.id:
            result[parent].extend(result[cluster.id])
    return {cid: list(dict.fromkeys(ids)) for cid, ids in result.items()}


def kura_ui_files(
    ordered: Sequence[tuple[Cluster, int]],
    members: Mapping[str, list[str]],
    summaries: Sequence[Summary],
    conversations: Sequence[Conversation],
    *,
    created_at: Mapping[str, datetime] | None = None,
) -> KuraUiFiles:
    """Kura's files for a result whose texts are already scrubbed and names already hidden.

    Args:
        ordered: Every cluster with its depth from the root, parents before children.
        members: Base cluster id -> its conversations' chat ids.
        summaries: The summaries; a conversation without one is left out.
        conversations: The conversations at hand; a summary without one gets a conversation
            with no messages.
        created_at: Start times for those conversations without messages (else now).

    Returns:
        The records and what was left out or filled in.
    """
    report = KuraUiReport()
    convs, sums = _conversation_records(summaries, conversations, created_at or {}, report)
    written = {c["chat_id"] for c in convs}
    shown: dict[str, list[str]] = {}
    for cluster_id, ids in members.items():
        shown[cluster_id] = [i for i in ids if i in written]
        report.dropped_from_clusters += len(ids) - len(shown[cluster_id])
    chat_ids = _chat_ids(ordered, shown)
    known = {c.id for c, _ in ordered}

    def kura_cluster(c: Cluster) -> dict[str, Any]:
        ids = chat_ids[c.id]
        parent = c.parent_id if c.parent_id in known and c.parent_id != c.id else None
        return {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "slug": _slug(c),
            "chat_ids": ids,
            "parent_id": parent,
            "count": len(ids),
        }

    report.clusters = len(ordered)
    return KuraUiFiles(
        conversations=convs,
        summaries=sums,
        base_clusters=[kura_cluster(c) for c, _ in ordered if c.level == 0],
        all_clusters=[kura_cluster(c) for c, _ in ordered],
        projected=[
            {**kura_cluster(c), "x_coord": _finite(c.x), "y_coord": _finite(c.y), "level": depth}
            for c, depth in ordered
        ],
        report=report,
    )


def stored_messages(conversation: Conversation) -> dict[str, Any]:
    """EmbeddedConversation's messages and messages_truncated for a (scrubbed) conversation."""
    messages, truncated = bound_messages(conversation.messages)
    return {"messages": messages, "messages_truncated": truncated}
