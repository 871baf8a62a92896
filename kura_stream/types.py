"""Frozen records that flow through kura-stream: conversations, summaries, clusters, events."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    PrivateAttr,
)

SCHEMA_VERSION = 1
"""Bumped whenever a record's shape changes; part of every cache and checkpoint key."""

MetadataValue = str | int | float | bool | list[str] | list[int] | list[float] | None
"""A metadata value, as Kura allows them (plus None)."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class Message(_Record):
    """One turn of a conversation (Kura's Message)."""

    created_at: datetime
    role: Literal["user", "assistant"]
    content: str


class Conversation(_Record):
    """A conversation between a user and an assistant; reads and writes Kura's JSON."""

    chat_id: str = Field(min_length=1, max_length=512)
    created_at: datetime
    messages: tuple[Message, ...] = Field(min_length=1)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    _scrubbed: bool = PrivateAttr(default=False)

    @property
    def scrubbed(self) -> bool:
        """Whether privacy.scrub_conversation made this copy: its text is scrubbed already.

        Never serialised and never set by parsing: a conversation read from anywhere is
        scrubbed (again) before a summariser sees it; only the copy the ingest made is not.
        """
        return self._scrubbed

    def mark_scrubbed(self) -> None:
        """Note that this copy's text has been scrubbed (privacy.scrub_conversation only)."""
        self._scrubbed = True

    def transcript(self) -> str:
        """The conversation as `user: ...` / `assistant: ...` lines."""
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages)

    # Kura's loaders by name; the I/O lives in kura_stream.loaders.kura_api, not here.
    @classmethod
    def from_hf_dataset(
        cls, dataset_name: str, split: str = "train", max_conversations: int | None = None,
        **kwargs: Any,
    ) -> list[Conversation]:  # fmt: skip
        """A Hugging Face dataset by name, a local dataset folder, or data files (Kura's)."""
        from kura_stream.loaders.kura_api import from_hf_dataset

        return from_hf_dataset(dataset_name, split, max_conversations, **kwargs)

    @classmethod
    def from_claude_conversation_dump(cls, file_path: str, **kwargs: Any) -> list[Conversation]:
        """A Claude export's conversations.json (Kura's); kwargs: metadata_fn."""
        from kura_stream.loaders.kura_api import from_claude_conversation_dump

        return from_claude_conversation_dump(file_path, **kwargs)

    @classmethod
    def from_conversation_dump(cls, file_path: str) -> list[Conversation]:
        """A JSON list of Kura conversations (Kura's dump format)."""
        from kura_stream.loaders.kura_api import from_conversation_dump

        return from_conversation_dump(file_path)

    @classmethod
    def generate_conversation_dump(cls, conversations: list[Conversation], file_path: str) -> None:
        """Write conversations as a JSON list that from_conversation_dump reads (Kura's)."""
        from kura_stream.loaders.kura_api import generate_conversation_dump

        generate_conversation_dump(conversations, file_path)


class Summary(_Record):
    """Clio's facets of one conversation, as a summariser produced them.

    Attributes:
        chat_id: The conversation summarised.
        summary: At most two sentences, no names or other personal details.
        request: The user's overall request.
        task: The task the assistant is asked to perform.
        topic: The main high-level topic.
        languages: Human and programming languages present.
        concerning_score: Safety concern, 1 (none) to 5 (severe); None when not assessed.
        user_frustration: User frustration, 1 to 5; None when not assessed.
        assistant_errors: Errors the assistant made.
        facets: Facets a user added (name -> value), kept as produced.
        metadata: The conversation's metadata, carried along.
        summariser: Which summariser produced it ("llm:<model>" or "offline:<version>").
        digest: The scrubbed prose of the user's turns, bounded in words, that an offline
            summary embeds in place of its one-line request; None where the summary itself is
            embedded (an LLM's).
    """

    chat_id: str
    summary: str
    request: str | None = None
    task: str | None = None
    topic: str | None = None
    languages: tuple[str, ...] = ()
    concerning_score: int | None = Field(default=None, ge=1, le=5)
    user_frustration: int | None = Field(default=None, ge=1, le=5)
    assistant_errors: tuple[str, ...] = ()
    facets: dict[str, JsonValue] = Field(default_factory=dict)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    summariser: str = "unknown"
    digest: str | None = None

    def embedding_text(self) -> str:
        """The text that is embedded, the same in batch and stream.

        The digest where there is one, else the summary and request; never ids or metadata.
        """
        if self.digest:
            return self.digest
        parts = [self.summary]
        if self.request and self.request not in self.summary:
            parts.append(self.request)
        return "\n".join(parts)


HierarchyGrouping = Literal["names", "centroids"]
"""How the hierarchy forms a level's parents: "names", the namer proposes and chooses them
(Clio, for an LLM); "centroids", k-means on the clusters' centroids, and the namer only names
them (for a namer that cannot judge meaning)."""


class Cluster(_Record):
    """A cluster of conversations, base (level 0) or meta (level > 0).

    Attributes:
        id: Stable id; kept across recomputes when the cluster is matched.
        name: Short imperative name, e.g. "Debug Python import errors".
        description: Two sentences on what its conversations ask for.
        slug: Three-word snake_case label.
        count: Number of conversations in it (meta: in all its descendants).
        parent_id: The meta-cluster above it, or None at the top.
        level: 0 for base clusters, increasing upwards.
        x: 2-D map position.
        y: 2-D map position.
    """

    id: str
    name: str
    description: str = ""
    slug: str = ""
    count: int = Field(ge=0)
    parent_id: str | None = None
    level: int = Field(default=0, ge=0)
    x: float = 0.0
    y: float = 0.0


class ProjectedCluster(Cluster):
    """Kura's ProjectedCluster: a cluster on the map with its members' chat ids (all levels).

    Kura's x_coord and y_coord read our x and y; Kura's count is our count field.
    """

    chat_ids: tuple[str, ...] = ()

    @property
    def x_coord(self) -> float:
        """Kura's name for x."""
        return self.x

    @property
    def y_coord(self) -> float:
        """Kura's name for y."""
        return self.y


ConversationSummary = Summary
"""Kura's name for a summary."""


class Assignment(_Record):
    """A conversation placed in a base cluster (or left in the outlier pool)."""

    chat_id: str
    cluster_id: str | None
    similarity: float
    new_cluster: bool = False
    at: datetime = Field(default_factory=utcnow)


Base64Bytes = Annotated[
    bytes,
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str),
]


DEAD_LETTER_KEEP_BYTES = 256 * 1024
"""An oversized original is cut to this in its dead letter (base64 must fit the DLQ topic);
the whole record stays in the source topic at `source`."""


class DeadLetter(_Record):
    """A record that could not be processed: the original bytes, why, and where."""

    original: Base64Bytes
    reason: str
    stage: str
    key: str | None = None
    size: int | None = None
    """Size of the original record in bytes (it may be cut, see `truncated`)."""
    truncated: bool = False
    """True when `original` holds only the first bytes of an oversized record."""
    source: str | None = None
    """Where the original still is: topic/partition/offset."""
    at: datetime = Field(default_factory=utcnow)

    @classmethod
    def from_record(
        cls,
        value: bytes | None,
        *,
        reason: str,
        stage: str,
        key: bytes | str | None = None,
        source: str | None = None,
    ) -> DeadLetter:
        """The dead letter of one consumed record: its bytes (cut when oversized) and why.

        Args:
            value: The record's bytes (None for a tombstone).
            reason: Why it cannot be processed, in one line.
            stage: The consumer that gave up on it (parse, summarise, embed, assign, ...).
            key: The record's key, bytes as consumed or already decoded.
            source: topic/partition/offset, where the whole record still is.
        """
        data = value or b""
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        return cls(
            original=data[:DEAD_LETTER_KEEP_BYTES],
            reason=reason,
            stage=stage,
            key=key,
            size=len(data),
            truncated=len(data) > DEAD_LETTER_KEEP_BYTES,
            source=source,
        )

    @classmethod
    def decode_original(cls, data: dict[str, Any]) -> bytes:
        """The original bytes of a dead letter read back from its JSON form."""
        return base64.b64decode(data["original"])


class ClusterLabel(_Record):
    """What a namer says of a group of conversations or clusters (Clio's name + description)."""

    name: str = Field(min_length=1)
    description: str = ""
    slug: str = ""


class ClusterEventKind(StrEnum):
    """What happened to a cluster, or to the map as a whole."""

    CREATED = "created"
    GROWN = "grown"
    RENAMED = "renamed"
    MERGED = "merged"
    SPLIT = "split"
    HIERARCHY_UPDATED = "hierarchy_updated"
    MAP_UPDATED = "map_updated"
    RECOMPUTE_STARTED = "recompute_started"
    RECOMPUTE_COMPLETED = "recompute_completed"
    RECOMPUTE_FAILED = "recompute_failed"


class ClusterEvent(_Record):
    """An entry of the cluster-events topic.

    Attributes:
        kind: What happened.
        cluster_id: The cluster concerned, if one is.
        count: Its member count after the event.
        name: Its (visible) name after the event.
        related: Other clusters involved: merged-from ids, or split-into ids.
        request_id: The command that caused it, for recompute events.
        detail: Anything else worth showing (timings, cluster totals, reasons).
        at: When it happened.
    """

    kind: ClusterEventKind
    cluster_id: str | None = None
    count: int | None = None
    name: str | None = None
    related: tuple[str, ...] = ()
    request_id: str | None = None
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)


class Command(_Record):
    """An entry of the commands topic: ask the service to recompute, or to rename a cluster."""

    kind: Literal["recompute", "rename"]
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    cluster_id: str | None = None
    name: str | None = None
    at: datetime = Field(default_factory=utcnow)


def _vector_from_wire(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(np.frombuffer(base64.b64decode(value), dtype="<f4").tolist())
    if isinstance(value, (tuple, list)):
        return value  # a JSON list, or our own floats: pydantic checks each is a number
    return tuple(float(x) for x in value)


WireVector = Annotated[
    tuple[float, ...],
    BeforeValidator(_vector_from_wire),
    PlainSerializer(
        lambda v: base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii"),
        return_type=str,
    ),
]
"""A float32 vector, base64 little-endian on the wire (a quarter of the JSON size)."""


class EmbeddedConversation(_Record):
    """A summarised and embedded conversation, between the summarise and assign consumers.

    Attributes:
        chat_id: The conversation.
        summary: Its (scrubbed) Clio facets.
        vector: The embedding of summary.embedding_text().
        embedder: Which embedder made the vector.
        created_at: When the conversation started.
        received_at: When its message reached kura-stream (Kafka timestamp), for latency.
        content_hash: A digest of the scrubbed messages: the same chat_id sent again with
            other content is a conflicting duplicate, not a redelivery.
        origin: topic/partition/offset of the conversation record it was made from: the
            same record summarised again after a crash is a redelivery, not a resend.
        messages: The scrubbed messages, bounded in characters (kura_ui_files.bound_messages),
            stored so an export can show them in Kura's web UI; empty in older records.
        messages_truncated: True when messages were cut to that bound.
    """

    chat_id: str
    summary: Summary
    vector: WireVector
    embedder: str
    created_at: datetime
    received_at: datetime
    content_hash: str | None = None
    origin: str | None = None
    messages: tuple[Message, ...] = ()
    messages_truncated: bool = False
