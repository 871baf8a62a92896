"""Records the cluster store holds: a conversation point and a cluster point (vector + payload)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True, eq=False)
class ClusterPoint:
    """One cluster as stored: its centroid and a JSON payload (name, count, parent, x, y, ...).

    Attributes:
        cluster_id: The cluster's stable id; the store's key.
        centroid: The cluster centroid (1-D float32).
        payload: JSON-serialisable data kept beside it.
    """

    cluster_id: str
    centroid: Vector
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: the id of the point found and its cosine similarity to the query."""

    id: str
    score: float
