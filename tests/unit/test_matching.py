"""Cluster identity across recomputes: matched, created, split, merged."""

from __future__ import annotations

from kura_stream.service.matching import match_clusters


def test_unchanged_clusters_keep_their_ids() -> None:
    old = {f"a{i}": "A" for i in range(10)} | {f"b{i}": "B" for i in range(10)}
    new = {f"a{i}": 1 for i in range(10)} | {f"b{i}": 0 for i in range(10)}
    m = match_clusters(old, new)
    assert m.ids == {1: "A", 0: "B"}
    assert not m.created
    assert not m.split_from
    assert not m.merged_into


def test_outliers_forming_a_cluster_is_a_creation() -> None:
    old = {f"a{i}": "A" for i in range(10)} | {f"o{i}": None for i in range(6)}
    new = {f"a{i}": 0 for i in range(10)} | {f"o{i}": 1 for i in range(6)}
    m = match_clusters(old, new)
    assert m.ids[0] == "A"
    assert m.created == [m.ids[1]]
    assert m.ids[1] != "A"


def test_split_and_merge_are_reported() -> None:
    # A splits into two halves; B and C merge into one.
    old = (
        {f"a{i}": "A" for i in range(20)}
        | {f"b{i}": "B" for i in range(10)}
        | {f"c{i}": "C" for i in range(4)}
    )
    new = (
        {f"a{i}": (0 if i < 12 else 1) for i in range(20)}
        | {f"b{i}": 2 for i in range(10)}
        | {f"c{i}": 2 for i in range(4)}
    )
    m = match_clusters(old, new)
    assert m.ids[0] == "A"
    assert m.ids[2] == "B"
    assert m.split_from == {m.ids[1]: "A"}
    assert m.merged_into == {"C": "B"}


def test_fresh_ids_are_deterministic() -> None:
    old = {f"o{i}": None for i in range(5)}
    new = {f"o{i}": 0 for i in range(5)}
    assert match_clusters(old, new).ids == match_clusters(old, new).ids
