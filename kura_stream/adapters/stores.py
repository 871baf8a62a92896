"""Cluster store plumbing shared by every implementation (store_factory.open_store picks one)."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint, Vector
from kura_stream.stages.member_blocks import MemberBlock

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Point ids are uuid5(namespace, key). Never change this constant: every stored id derives from it.
KEY_NAMESPACE = uuid.UUID("23629161-7750-43c2-98ae-71e8e0e29149")


class StoreError(RuntimeError):
    """A cluster store cannot be opened or used as asked."""


class StoreClosedError(StoreError):
    """The store was closed; open a new one."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store open."""


class DimensionMismatchError(StoreError):
    """An existing collection was made for vectors of another length (or distance)."""


def point_id(key: str) -> str:
    """The engine-level point id of a chat_id or cluster_id: a stable uuid5 of the key.

    Args:
        key: The record's key.

    Returns:
        The uuid as a string (Qdrant accepts only integers and uuids as ids).
    """
    return str(uuid.uuid5(KEY_NAMESPACE, key))


def collection_names(prefix: str) -> tuple[str, str]:
    """The conversations and clusters collection names for a prefix."""
    return f"{prefix}_conversations", f"{prefix}_clusters"


def check_vector(vector: Vector, dim: int, what: str) -> npt.NDArray[np.float32]:
    """Validate a vector for a cosine store and return it as a unit-length float32 array.

    Cosine stores keep only the direction, so every implementation stores (and returns) the
    normalised vector.

    Args:
        vector: The vector as given.
        dim: The store's vector length.
        what: Names the record in the error message (e.g. "conversation 'c1'").

    Returns:
        A new 1-D float32 array of length dim and unit norm.

    Raises:
        ValueError: wrong shape or length, non-finite values, or the zero vector.
    """
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1 or arr.shape[0] != dim:
        raise ValueError(
            f"{what}: vector has shape {arr.shape}, but this store holds {dim}-d vectors"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: vector has NaN or infinite values")
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise ValueError(f"{what}: the zero vector has no direction for cosine similarity")
    return (arr / norm).astype(np.float32)


PAYLOAD_FIELD = "payload_json"
"""The engine payload field holding the user payload as one JSON text. One string field instead
of a nested object: the engine converts it to and from Python in one step (converting nested
dicts was a quarter of the assign consumer's time); only chat_id and cluster_id are filtered."""


def payload_text(payload: Mapping[str, Any], what: str) -> str:
    """The user payload as compact JSON text.

    Raises:
        ValueError: the payload is not JSON-serialisable (or holds NaN).
    """
    try:
        return json.dumps(dict(payload), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: payload is not JSON-serialisable: {exc}") from exc


def json_payload(payload: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A JSON round trip of payload: what every engine gives back (tuples become lists).

    Raises:
        ValueError: the payload is not JSON-serialisable (or holds NaN).
    """
    result: dict[str, Any] = json.loads(payload_text(payload, what))
    return result


def meta_payload(meta: ClusterMeta) -> dict[str, Any]:
    """A cluster's metadata as the JSON payload every store keeps (the one way in)."""
    return meta.model_dump(mode="json")


def cluster_meta(payload: Mapping[str, Any]) -> ClusterMeta:
    """A cluster's metadata from its stored payload (the one way out).

    Payloads of older versions load: unknown keys are ignored, missing ones defaulted.
    """
    return ClusterMeta.model_validate(payload)


def _user_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    text = payload.get(PAYLOAD_FIELD)
    if text is not None:
        result: dict[str, Any] = json.loads(text)
        return result
    nested: dict[str, Any] = payload.get("payload") or {}  # the nested layout of earlier versions
    return nested


ARRIVED_FIELD = "assigned_s"
"""Engine payload field beside the JSON: when the conversation was assigned (epoch seconds)."""

DUPLICATES_FIELD = "duplicates"
"""Engine payload field beside the JSON: copies of the conversation received again."""

MEMBER_FIELDS = ["chat_id", "cluster_id", ARRIVED_FIELD, DUPLICATES_FIELD]
"""What a rebuild or a recompute reads of each conversation besides its vector: kept outside
the JSON text, so a scan of a million conversations parses no payload."""


def arrival_seconds(payload: Mapping[str, Any]) -> float:
    """When a conversation was assigned (its user payload's assigned_at), -inf if unknown."""
    try:
        return datetime.fromisoformat(str(payload["assigned_at"])).timestamp()
    except (KeyError, ValueError):
        return float("-inf")


def encode_conversation(
    point: ConversationPoint, dim: int
) -> tuple[str, list[float], dict[str, Any]]:
    """Point id, unit vector and engine payload of a conversation (user payload nested)."""
    what = f"conversation {point.chat_id!r}"
    vector = check_vector(point.vector, dim, what)
    payload: dict[str, Any] = {
        "chat_id": point.chat_id,
        "cluster_id": point.cluster_id,
        PAYLOAD_FIELD: payload_text(point.payload, what),
        DUPLICATES_FIELD: int(point.payload.get("duplicates") or 0),
    }
    arrived = arrival_seconds(point.payload)
    if math.isfinite(arrived):
        payload[ARRIVED_FIELD] = arrived
    return point_id(point.chat_id), vector.tolist(), payload


def member_block(raw: Sequence[tuple[Mapping[str, Any], Any]]) -> tuple[MemberBlock, list[int]]:
    """Stored conversations as a MemberBlock, from engine payloads and vectors.

    Each payload holds at least MEMBER_FIELDS, or is the whole payload of a version that kept
    the arrival time and duplicates only in the JSON text.

    Returns:
        The block, and the rows whose payload had neither (read with MEMBER_FIELDS from a
        point an earlier version wrote): their arrival and duplicates are still to be read.
    """
    arrived = np.full(len(raw), -np.inf)
    duplicates = 0
    chat_ids: list[str] = []
    cluster_ids: list[str | None] = []
    vectors: list[Any] = []
    missing: list[int] = []
    for row, (payload, vector) in enumerate(raw):
        chat_ids.append(str(payload["chat_id"]))
        cluster_ids.append(payload.get("cluster_id"))
        vectors.append(vector)
        count = payload.get(DUPLICATES_FIELD)
        if count is None:  # written before the fields were kept outside the JSON
            if PAYLOAD_FIELD not in payload:
                missing.append(row)
                continue
            arrived[row], count = arrival_in_json(payload)
        duplicates += int(count)
        if ARRIVED_FIELD not in payload:
            continue
        arrived[row] = float(payload[ARRIVED_FIELD])
    block = MemberBlock(
        chat_ids=chat_ids,
        cluster_ids=cluster_ids,
        vectors=np.array(vectors, dtype=np.float32).reshape(len(raw), -1),
        arrived=arrived,
        duplicates=duplicates,
    )
    return block, missing


def encode_cluster(point: ClusterPoint, dim: int) -> tuple[str, list[float], dict[str, Any]]:
    """Point id, unit centroid and engine payload of a cluster (its meta as JSON text)."""
    what = f"cluster {point.cluster_id!r}"
    vector = check_vector(point.centroid, dim, what)
    payload = {
        "cluster_id": point.cluster_id,
        PAYLOAD_FIELD: payload_text(meta_payload(point.meta), what),
    }
    return point_id(point.cluster_id), vector.tolist(), payload


def arrival_in_json(payload: Mapping[str, Any]) -> tuple[float, int]:
    """Arrival (seconds, -inf if unknown) and duplicates of a conversation, from its JSON."""
    user = _user_payload(payload)
    return arrival_seconds(user), int(user.get("duplicates") or 0)


def decode_conversation(payload: Mapping[str, Any], vector: Any) -> ConversationPoint:
    """A ConversationPoint from an engine payload and vector (as written by encode_conversation)."""
    return ConversationPoint(
        chat_id=str(payload["chat_id"]),
        vector=np.asarray(vector, dtype=np.float32),
        cluster_id=payload.get("cluster_id"),
        payload=_user_payload(payload),
    )


def decode_cluster(payload: Mapping[str, Any], vector: Any) -> ClusterPoint:
    """A ClusterPoint from an engine payload and vector (as written by encode_cluster)."""
    return ClusterPoint(
        cluster_id=str(payload["cluster_id"]),
        centroid=np.asarray(vector, dtype=np.float32),
        meta=decode_meta(payload),
    )


def decode_meta(payload: Mapping[str, Any]) -> ClusterMeta:
    """A cluster's meta from its engine payload (as written by encode_cluster)."""
    return cluster_meta(_user_payload(payload))


def in_input_order(keys: Sequence[str], found: Mapping[str, T]) -> list[T]:
    """The found records for keys, in the order of keys; keys not found are left out."""
    return [found[k] for k in keys if k in found]
