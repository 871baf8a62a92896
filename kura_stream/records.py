"""Records the cluster store holds: a conversation point and a cluster point (vector + meta)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

from kura_stream.types import Cluster

Vector = npt.NDArray[np.float32]
"""A 1-D float32 embedding vector."""


@dataclass(frozen=True, eq=False)
class ConversationPoint:
    """One conversation as stored: its embedding, its base cluster and a JSON payload.

    Attributes:
        chat_id: The conversation's id, unique; the store's key.
        vector: The summary embedding (1-D float32).
        cluster_id: The base cluster the conversation belongs to, or None while it is an outlier.
        payload: JSON-serialisable data kept beside it (summary facets, created_at, ...).
    """

    chat_id: str
    vector: Vector
    cluster_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


NamerKind = Literal["offline", "llm", "manual"]
"""Who gave a cluster its current name."""


class ClusterMeta(BaseModel):
    """What the store keeps beside a cluster's centroid.

    Only the store adapters turn it into a payload and back (adapters/stores.py). Stored
    payloads of older versions still load: unknown keys are ignored, and missing keys or
    null values take the defaults below.

    Attributes:
        name: The cluster's name ("" while unnamed).
        description: What its conversations ask for.
        slug: Three-word snake_case label.
        count: Conversations in it (meta clusters: in all their descendants).
        parent_id: The meta cluster above it, or None at the top.
        level: 0 for base clusters, increasing upwards.
        x: 2-D map position.
        y: 2-D map position.
        created_at: When the stream first stored it (None: made by a recompute).
        named_count: Its count when it was last named (it is renamed once it doubles).
        announced_count: Its count when a created or grown event was last published.
        namer: Who gave the current name (None: unnamed, or stored by an older version).
        naming_failed_count: Its count when a namer last failed on it (0: none failed).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = ""
    description: str = ""
    slug: str = ""
    count: int = 0
    parent_id: str | None = None
    level: int = 0
    x: float = 0.0
    y: float = 0.0
    created_at: datetime | None = None
    named_count: int = 0
    announced_count: int = 0
    namer: NamerKind | None = None
    naming_failed_count: int = 0

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        # Older versions wrote None for a count they did not know (e.g. named_count).
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data

    def cluster(self, cluster_id: str) -> Cluster:
        """The cluster as the pipeline's Cluster record (name, count, parent, map position)."""
        return Cluster(
            id=cluster_id,
            name=self.name,
            description=self.description,
            slug=self.slug,
            count=self.count,
            parent_id=self.parent_id,
            level=self.level,
            x=self.x,
            y=self.y,
        )


@dataclass(frozen=True, eq=False)
class ClusterPoint:
    """One cluster as stored: its centroid and its metadata (name, count, parent, x, y, ...).

    Attributes:
        cluster_id: The cluster's stable id; the store's key.
        centroid: The cluster centroid (1-D float32).
        meta: Everything kept beside the centroid.
    """

    cluster_id: str
    centroid: Vector
    meta: ClusterMeta = field(default_factory=ClusterMeta)


@dataclass(frozen=True)
class Hit:
    """A search result: the id of the point found and its cosine similarity to the query."""

    id: str
    score: float
