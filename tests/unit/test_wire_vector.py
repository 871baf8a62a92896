"""EmbeddedConversation's vector: base64 float32 on the wire, and older JSON lists still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from kura_stream.types import EmbeddedConversation, Summary

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _record(vector: object) -> EmbeddedConversation:
    return EmbeddedConversation.model_validate(
        {
            "chat_id": "c1",
            "summary": Summary(chat_id="c1", summary="s"),
            "vector": vector,
            "embedder": "static",
            "created_at": NOW,
            "received_at": NOW,
        }
    )


def test_the_vector_round_trips_as_float32_whatever_it_was_made_from() -> None:
    values = np.random.default_rng(0).standard_normal(8).astype(np.float32)
    want = tuple(values.tolist())
    for given in (want, list(want), values):
        record = _record(given)
        assert record.vector == want
        wire = record.model_dump_json()
        assert isinstance(json.loads(wire)["vector"], str)  # base64, not a list of floats
        assert EmbeddedConversation.model_validate_json(wire).vector == want


def test_an_older_record_with_a_json_list_still_reads() -> None:
    wire = _record((0.5, -1.0, 2.0)).model_dump(mode="json")
    wire["vector"] = [0.5, -1, 2.0]
    assert EmbeddedConversation.model_validate_json(json.dumps(wire)).vector == (0.5, -1.0, 2.0)


def test_a_vector_of_something_else_is_refused() -> None:
    with pytest.raises(ValidationError):
        _record(["x", None])
