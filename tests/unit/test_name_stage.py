"""The naming stage: bounded, deterministic samples and failures kept as data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.protocols import ClusterNamer
from kura_stream.stages.name import (
    ClusterGroup,
    base_clusters,
    group_id,
    groups_from_labels,
    name_clusters,
    sample_for_naming,
)
from kura_stream.types import ClusterLabel, Summary

DIM = 16


class RecordingNamer:
    """A fake ClusterNamer that records what it was given."""

    def __init__(self, fail_on: frozenset[str] = frozenset(), delay: float = 0.0) -> None:
        self.calls: list[tuple[list[Summary], list[Summary]]] = []
        self.fail_on = fail_on
        self.delay = delay
        self.running = 0
        self.max_running = 0

    @property
    def name(self) -> str:
        return "fake:recording"

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            self.calls.append((list(members), list(contrast)))
            prefix = members[0].chat_id.split(":")[0]
            if prefix in self.fail_on:
                raise RuntimeError(f"model refused {prefix}")
            return ClusterLabel(name=f"Group {prefix}", slug=prefix)
        finally:
            self.running -= 1


def unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def make_group(
    prefix: str, centre: npt.NDArray[np.float64], n: int, spread: float, seed: int
) -> ClusterGroup:
    rng = np.random.default_rng(seed)
    vectors = unit(centre + spread * rng.normal(size=(n, DIM)))
    members = [Summary(chat_id=f"{prefix}:{i}", summary=f"{prefix} item {i}") for i in range(n)]
    return ClusterGroup(prefix, members, vectors)


@pytest.fixture(scope="module")
def groups() -> list[ClusterGroup]:
    """A huge group, a near neighbour, a far group and a small one."""
    rng = np.random.default_rng(7)
    base = unit(rng.normal(size=DIM))
    near = unit(base + 0.5 * unit(rng.normal(size=DIM)))
    far = -base
    other = unit(rng.normal(size=DIM))
    return [
        make_group("big", base, 10_000, 0.2, 1),
        make_group("near", near, 300, 0.2, 2),
        make_group("far", far, 300, 0.2, 3),
        make_group("small", other, 7, 0.2, 4),
    ]


async def test_a_10000_member_group_gives_at_most_50_plus_50(groups: list[ClusterGroup]) -> None:
    namer = RecordingNamer()
    named = await name_clusters(groups, namer=namer)
    assert [n.cluster_id for n in named] == ["big", "near", "far", "small"]
    assert all(n.ok for n in named)
    for members, contrast in namer.calls:
        assert len(members) <= 50
        assert len(contrast) <= 50
    big_members, big_contrast = next(c for c in namer.calls if c[0][0].chat_id.startswith("big"))
    assert len(big_members) == 50
    assert len(big_contrast) == 50
    assert len({s.chat_id for s in big_members}) == 50
    assert all(s.chat_id.startswith("big:") for s in big_members)
    assert not any(s.chat_id.startswith("big:") for s in big_contrast)


def test_contrast_is_the_nearest_non_members(groups: list[ClusterGroup]) -> None:
    sample = sample_for_naming(groups)[0]
    assert {s.chat_id.split(":")[0] for s in sample.contrast} == {"near"}
    big = groups[0]
    centre = big.vectors.mean(axis=0)
    centre /= np.linalg.norm(centre)
    near = groups[1]
    sims = near.vectors @ centre
    expected = {near.members[i].chat_id for i in np.argsort(-sims)[:50]}
    assert {s.chat_id for s in sample.contrast} == expected


def test_members_are_the_core_plus_a_random_rest(groups: list[ClusterGroup]) -> None:
    big = groups[0]
    sample = sample_for_naming(groups, max_members=40)[0]
    centre = big.vectors.mean(axis=0)
    centre /= np.linalg.norm(centre)
    core = [big.members[i].chat_id for i in np.argsort(-(big.vectors @ centre))[:20]]
    ids = [s.chat_id for s in sample.members]
    assert ids[:20] == core
    assert len(set(ids[20:]) - set(core)) == 20


def test_small_groups_are_shown_whole(groups: list[ClusterGroup]) -> None:
    sample = sample_for_naming(groups)[3]
    assert sorted(s.chat_id for s in sample.members) == sorted(s.chat_id for s in groups[3].members)


def test_sampling_is_deterministic_and_independent_of_other_groups(
    groups: list[ClusterGroup],
) -> None:
    a = sample_for_naming(groups, seed=5)
    b = sample_for_naming(list(reversed(groups)), seed=5)
    assert [s.chat_id for s in a[0].members] == [s.chat_id for s in b[-1].members]
    c = sample_for_naming(groups, seed=6)
    assert [s.chat_id for s in a[0].members] != [s.chat_id for s in c[0].members]


async def test_a_failing_group_is_reported_not_dropped(groups: list[ClusterGroup]) -> None:
    named = await name_clusters(groups, namer=RecordingNamer(fail_on=frozenset({"near"})))
    assert len(named) == 4
    failed = named[1]
    assert not failed.ok
    assert failed.error is not None
    assert "model refused near" in failed.error
    assert failed.label.name == "Unnamed cluster near"
    assert all(n.ok for i, n in enumerate(named) if i != 1)


async def test_fallback_namer_labels_a_failed_group(groups: list[ClusterGroup]) -> None:
    fallback = RecordingNamer()
    named = await name_clusters(
        groups, namer=RecordingNamer(fail_on=frozenset({"far"})), fallback=fallback
    )
    assert not named[2].ok
    assert named[2].label.name == "Group far"
    assert len(fallback.calls) == 1


async def test_empty_group_is_an_error_not_a_crash() -> None:
    empty = ClusterGroup("empty", [], np.zeros((0, DIM), dtype=np.float32))
    named = await name_clusters([empty], namer=RecordingNamer())
    assert named[0].error is not None
    assert "empty group" in named[0].error


async def test_concurrency_is_bounded(groups: list[ClusterGroup]) -> None:
    many = [
        make_group(f"g{i}", groups[2].vectors[0].astype(np.float64), 5, 0.1, i) for i in range(12)
    ]
    namer = RecordingNamer(delay=0.01)
    await name_clusters(many, namer=namer, concurrency=3)
    assert namer.max_running == 3


def test_misaligned_vectors_are_refused() -> None:
    bad = ClusterGroup("bad", [Summary(chat_id="x", summary="x")], np.zeros((2, DIM), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        sample_for_naming([bad])


def test_groups_from_labels_and_base_clusters() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(6, DIM)))
    summaries = [Summary(chat_id=f"c{i}", summary=f"s{i}") for i in range(6)]
    groups = groups_from_labels(summaries, vectors, [1, 0, 1, -1, 0, 0])
    assert [len(g.members) for g in groups] == [3, 2]
    assert groups[0].cluster_id == group_id(["c4", "c1", "c5"])
    clusters, cents = base_clusters(groups, [])
    assert [c.count for c in clusters] == [3, 2]
    assert clusters[0].name.startswith("Unnamed cluster")
    assert np.linalg.norm(cents[groups[0].cluster_id]) == pytest.approx(1.0, rel=1e-5)


def test_recording_namer_is_a_cluster_namer() -> None:
    assert isinstance(RecordingNamer(), ClusterNamer)
