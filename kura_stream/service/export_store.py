"""Export what a cluster store holds, as `batch --out` does (used by `kura-stream export`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kura_stream.export import ExportPaths, export_batch
from kura_stream.protocols import ClusterStore
from kura_stream.records import ConversationPoint
from kura_stream.types import Conversation, Summary

logger = logging.getLogger(__name__)


def _stored_conversation(
    point: ConversationPoint, summary: Summary, created_at: datetime
) -> Conversation | None:
    """The scrubbed conversation stored beside a point; None where no messages were kept."""
    messages = point.payload.get("messages")
    if not messages:
        return None
    try:
        return Conversation(
            chat_id=point.chat_id,
            created_at=created_at,
            messages=messages,
            metadata=summary.metadata,
        )
    except ValidationError as err:
        logger.warning("stored messages of %s unreadable: %s", point.chat_id, err)
        return None


def _created_at(payload: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(payload["created_at"]))
    except (KeyError, ValueError):
        return None


def export_store(store: ClusterStore, dest: Path, *, min_size_shown: int) -> ExportPaths:
    """Write clusters.json, assignments.jsonl, summaries.jsonl and Kura's files from a store.

    Kura's conversations.json holds every stored conversation with its scrubbed messages as
    the store kept them (bounded at ingest); one stored before messages were kept has none,
    and the export report counts them.
    """
    clusters = [c.meta.cluster(c.cluster_id) for c in store.list_clusters()]
    assignments: dict[str, str | None] = {}
    summaries: list[Summary] = []
    conversations: list[Conversation] = []
    created_at: dict[str, datetime] = {}
    truncated = 0
    for batch in store.iter_conversations(batch_size=2000):
        for p in batch:
            assignments[p.chat_id] = p.cluster_id
            data = p.payload.get("summary")
            if not isinstance(data, dict):
                continue
            summary = Summary.model_validate(data)
            summaries.append(summary)
            when = _created_at(p.payload)
            if when is not None:
                created_at[p.chat_id] = when
            conversation = _stored_conversation(p, summary, when or datetime.now().astimezone())
            if conversation is not None:
                conversations.append(conversation)
                truncated += bool(p.payload.get("messages_truncated"))
    return export_batch(
        dest,
        clusters=clusters,
        assignments=assignments,
        summaries=summaries,
        conversations=conversations,
        min_size_shown=min_size_shown,
        created_at=created_at,
        notes={"messages_truncated": truncated},
    )
