"""The engine payload layout both Qdrant stores write and read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kura_stream.adapters.stores import (
    DUPLICATES_FIELD,
    PAYLOAD_FIELD,
    decode_cluster,
    decode_conversation,
    encode_cluster,
    encode_conversation,
)
from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint


def test_conversation_payload_is_one_json_text_and_round_trips() -> None:
    point = ConversationPoint(
        chat_id="c1",
        vector=np.array([3.0, 4.0], dtype=np.float32),
        cluster_id="k1",
        payload={"summary": "ask", "facets": ("a", "b"), "n": 2},
    )
    _, vector, stored = encode_conversation(point, 2)
    # Beside the JSON text, what a rebuild reads without parsing it: the duplicates count
    # (no arrival time here: the payload has no assigned_at).
    assert set(stored) == {"chat_id", "cluster_id", PAYLOAD_FIELD, DUPLICATES_FIELD}
    assert stored[DUPLICATES_FIELD] == 0
    assert isinstance(stored[PAYLOAD_FIELD], str)
    back = decode_conversation(stored, vector)
    assert (back.chat_id, back.cluster_id) == ("c1", "k1")
    assert back.payload == {"summary": "ask", "facets": ["a", "b"], "n": 2}
    assert np.allclose(back.vector, [0.6, 0.8])


def test_cluster_meta_round_trips() -> None:
    point = ClusterPoint(
        cluster_id="k1", centroid=np.array([1.0, 0.0], dtype=np.float32), meta=ClusterMeta(count=3)
    )
    _, vector, stored = encode_cluster(point, 2)
    assert json.loads(stored[PAYLOAD_FIELD])["count"] == 3
    assert decode_cluster(stored, vector).meta == ClusterMeta(count=3)


def test_points_written_with_the_earlier_nested_layout_still_decode() -> None:
    old = {"chat_id": "c1", "cluster_id": None, "payload": {"summary": "ask"}}
    assert decode_conversation(old, [1.0, 0.0]).payload == {"summary": "ask"}
    assert decode_cluster({"cluster_id": "k1", "payload": {"count": 1}}, [1.0]).meta.count == 1


def test_cluster_payloads_of_older_versions_load() -> None:
    """Unknown keys are ignored; missing keys and nulls take the defaults."""
    written = {
        "name": "Cook rice",
        "count": 7,
        "named_count": None,  # the hand rename of an older version wrote the count it found
        "parent_id": None,
        "created_at": "2025-01-01T00:00:00+00:00",
        "size": 7,
        "nested": {"a": [1]},
    }
    stored = {"cluster_id": "k1", PAYLOAD_FIELD: json.dumps(written)}
    meta = decode_cluster(stored, [1.0]).meta
    assert (meta.name, meta.count, meta.named_count, meta.namer) == ("Cook rice", 7, 0, None)
    assert (meta.parent_id, meta.level, meta.x, meta.description) == (None, 0, 0.0, "")
    assert meta.created_at is not None
    assert meta.created_at.year == 2025
    assert decode_cluster({"cluster_id": "k2", PAYLOAD_FIELD: "{}"}, [1.0]).meta == ClusterMeta()


def test_a_payload_that_is_not_json_is_refused_with_its_key() -> None:
    point = ConversationPoint(
        chat_id="c1",
        vector=np.array([1.0, 0.0], dtype=np.float32),
        cluster_id=None,
        payload={"x": float("nan")},
    )
    with pytest.raises(ValueError, match="conversation 'c1'"):
        encode_conversation(point, 2)
