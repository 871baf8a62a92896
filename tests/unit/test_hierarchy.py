"""Clio's meta-clustering with the offline parent namer and with a namer that invents labels."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from kura_stream.stages.hierarchy import (
    Hierarchy,
    build_hierarchy,
    neighbourhoods,
    normal_text,
    parent_id,
    target_parents,
)
from kura_stream.stages.offline_parent_namer import OfflineParentNamer
from kura_stream.types import Cluster, ClusterLabel

DIM = 64
THEMES = {
    "python": ["pandas", "numpy", "django", "flask", "asyncio", "pytest", "typing", "pip"],
    "recipe": ["curry", "pasta", "bread", "cake", "soup", "salad", "lasagna", "risotto"],
    "travel": ["lisbon", "japan", "rome", "scotland", "flights", "hotels", "trains", "visa"],
    "fitness": ["running", "yoga", "squats", "cycling", "swimming", "stretching", "cardio", "gym"],
    "finance": ["budget", "taxes", "stocks", "mortgage", "savings", "pension", "crypto", "loans"],
    "music": ["guitar", "piano", "chords", "drums", "singing", "mixing", "theory", "violin"],
}


def word_vector(word: str) -> npt.NDArray[np.float64]:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
    return np.random.default_rng(seed).normal(size=DIM)


def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """A small deterministic embedder: the normalised sum of hashed word vectors."""
    out = np.zeros((len(texts), DIM))
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i] += word_vector(word)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def base() -> tuple[list[Cluster], dict[str, npt.NDArray[np.float32]]]:
    """48 base clusters in 6 themes, each named "<Theme> <Topic> Questions"."""
    rng = np.random.default_rng(0)
    clusters: list[Cluster] = []
    cents: dict[str, npt.NDArray[np.float32]] = {}
    for theme, topics in THEMES.items():
        centre = word_vector(theme)
        centre /= np.linalg.norm(centre)
        for topic in topics:
            cid = f"b-{theme}-{topic}"
            clusters.append(
                Cluster(
                    id=cid,
                    name=f"{theme.title()} {topic.title()} Questions",
                    description=f"Conversations about {theme} and {topic}.",
                    slug=f"{theme}_{topic}",
                    count=int(rng.integers(1, 50)),
                )
            )
            v = centre + 0.3 * rng.normal(size=DIM) / np.sqrt(DIM)
            cents[cid] = (v / np.linalg.norm(v)).astype(np.float32)
    return clusters, cents


class InventingNamer(OfflineParentNamer):
    """Proposes like the offline namer but answers choose_parent with invented names."""

    def __init__(self, invent_every: int = 3, always: bool = False) -> None:
        self.calls = 0
        self.invent_every = invent_every
        self.always = always
        self.propose_sizes: list[int] = []
        self.choose_sizes: list[int] = []
        self.label_sizes: list[int] = []

    @property
    def name(self) -> str:
        return "fake:inventing"

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        self.propose_sizes.append(len(children))
        return [*await super().propose_parents(children, desired), "Python"]

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        self.choose_sizes.append(len(candidates))
        self.calls += 1
        if self.always or self.calls % self.invent_every == 0:
            return f"Invented Category {self.calls}"
        answer = await super().choose_parent(child, candidates)
        return answer.upper() if self.calls % 5 == 0 else answer  # same name, other case

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        self.label_sizes.append(len(children))
        return ClusterLabel(name=f"Invented parent of {len(children)}", slug="invented")


def check_tree(h: Hierarchy, base_clusters: list[Cluster], max_top: int) -> None:
    by_id = {c.id: c for c in h.clusters}
    assert len(by_id) == len(h.clusters), "ids are unique"
    assert {c.id for c in base_clusters} <= set(by_id)
    tops = [c for c in h.clusters if c.parent_id is None]
    assert 1 <= len(tops) <= max_top
    for c in h.clusters:
        if c.parent_id is not None:
            parent = by_id[c.parent_id]  # exactly one parent, and it exists
            assert parent.level == c.level + 1
    for c in h.clusters:
        kids = [k for k in h.clusters if k.parent_id == c.id]
        if c.level > 0:
            assert kids, "parents with no children are dropped"
            assert c.count == sum(k.count for k in kids)
            assert c.id == parent_id(c.level, [k.id for k in kids])
        else:
            assert not kids
    assert sum(t.count for t in tops) == sum(c.count for c in base_clusters)
    assert set(h.centroids) == set(by_id)


@pytest.mark.parametrize("max_top", [1, 3, 6, 10])
async def test_offline_hierarchy_is_a_valid_tree(max_top: int) -> None:
    clusters, cents = base()
    h = await build_hierarchy(
        clusters,
        cents,
        namer=OfflineParentNamer(),
        embed=embed,
        max_top=max_top,
        neighbourhood_size=10,
    )
    check_tree(h, clusters, max_top)
    assert h.report.levels >= 1
    assert h.report.rejections == 0
    assert h.report.fallbacks == 0


async def test_offline_hierarchy_groups_by_theme() -> None:
    clusters, cents = base()
    h = await build_hierarchy(
        clusters, cents, namer=OfflineParentNamer(), embed=embed, max_top=6, neighbourhood_size=16
    )
    by_id = {c.id: c for c in h.clusters}

    def top_of(c: Cluster) -> Cluster:
        while c.parent_id is not None:
            c = by_id[c.parent_id]
        return c

    top_of_theme = {}
    for theme in THEMES:
        tops = {top_of(by_id[c.id]).id for c in clusters if c.id.startswith(f"b-{theme}-")}
        assert len(tops) == 1, f"{theme} split over {len(tops)} top clusters"
        top_of_theme[theme] = tops.pop()
    assert len(set(top_of_theme.values())) == len(THEMES), "each theme has its own top"


async def test_centroid_grouping_follows_the_centroids_not_the_names() -> None:
    clusters, cents = base()
    # Names that mislead: two names shared across all themes (by name, they are two groups).
    misnamed = [
        c.model_copy(
            update={"name": ("Alpha Questions", "Beta Questions")[i % 2], "description": ""}
        )
        for i, c in enumerate(clusters)
    ]
    h = await build_hierarchy(
        misnamed, cents, namer=OfflineParentNamer(), embed=embed, max_top=6, grouping="centroids"
    )
    check_tree(h, misnamed, 6)
    by_id = {c.id: c for c in h.clusters}

    def top_of(c: Cluster) -> str:
        while c.parent_id is not None:
            c = by_id[c.parent_id]
        return c.id

    tops = {
        theme: {top_of(by_id[c.id]) for c in misnamed if f"-{theme}-" in c.id} for theme in THEMES
    }
    assert all(len(t) == 1 for t in tops.values()), tops  # no theme is split
    first = [c for c in h.clusters if c.level == 1]
    for parent in first:  # and no first-level parent mixes themes, whatever the names say
        themes = {k.id.split("-")[1] for k in misnamed if by_id[k.id].parent_id == parent.id}
        assert len(themes) == 1, (parent.name, themes)
    assert h.report.proposals == 0  # the namer only named the parents
    assert all(c.name for c in h.clusters)


async def test_ids_and_names_are_deterministic() -> None:
    clusters, cents = base()
    a = await build_hierarchy(clusters, cents, namer=OfflineParentNamer(), embed=embed, max_top=4)
    b = await build_hierarchy(
        list(clusters), dict(cents), namer=OfflineParentNamer(), embed=embed, max_top=4
    )
    assert [c.model_dump() for c in a.clusters] == [c.model_dump() for c in b.clusters]


async def test_invented_answers_are_rejected_and_every_child_gets_a_real_parent() -> None:
    clusters, cents = base()
    namer = InventingNamer(invent_every=3)
    h = await build_hierarchy(
        clusters, cents, namer=namer, embed=embed, max_top=5, neighbourhood_size=10
    )
    check_tree(h, clusters, 5)
    assert h.report.rejections > 0
    assert not any(c.name.startswith("Invented Category") for c in h.clusters)


async def test_always_inventing_falls_back_to_the_nearest_candidate() -> None:
    clusters, cents = base()
    namer = InventingNamer(always=True)
    h = await build_hierarchy(clusters, cents, namer=namer, embed=embed, max_top=5)
    check_tree(h, clusters, 5)
    n_children = sum(1 for c in h.clusters if c.parent_id is not None)
    assert h.report.fallbacks == n_children
    assert h.report.rejections == 2 * n_children  # the answer and its one retry


async def test_prompts_stay_bounded() -> None:
    clusters, cents = base()
    many = clusters * 1  # 48 clusters, neighbourhoods of about 6
    namer = InventingNamer(invent_every=7)
    await build_hierarchy(
        many,
        cents,
        namer=namer,
        embed=embed,
        max_top=3,
        neighbourhood_size=6,
        outside_context=2,
        max_candidates=4,
        max_children_shown=5,
    )
    assert max(namer.propose_sizes) <= 2 * 6 + 2
    assert max(namer.choose_sizes) <= 4
    assert max(namer.label_sizes) <= 5


class BrokenNamer(OfflineParentNamer):
    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        raise RuntimeError("proposal failed")

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        raise RuntimeError("label failed")


async def test_namer_failures_still_give_a_valid_tree() -> None:
    clusters, cents = base()
    h = await build_hierarchy(clusters, cents, namer=BrokenNamer(), embed=embed, max_top=4)
    check_tree(h, clusters, 4)
    assert h.report.proposal_failures == h.report.proposals > 0
    assert h.report.label_failures > 0


async def test_few_clusters_are_returned_as_they_are() -> None:
    clusters, cents = base()
    h = await build_hierarchy(clusters[:3], cents, namer=OfflineParentNamer(), embed=embed)
    assert h.clusters == clusters[:3]
    assert h.report.levels == 0


async def test_parent_centroid_is_the_count_weighted_mean() -> None:
    clusters, cents = base()
    h = await build_hierarchy(clusters, cents, namer=OfflineParentNamer(), embed=embed, max_top=6)
    for p in (c for c in h.clusters if c.level == 1):
        kids = [k for k in h.clusters if k.parent_id == p.id]
        mean = sum(k.count * h.centroids[k.id].astype(np.float64) for k in kids)
        np.testing.assert_allclose(h.centroids[p.id], mean / np.linalg.norm(mean), atol=1e-5)


async def test_near_duplicate_candidates_are_merged() -> None:
    class Duplicating(OfflineParentNamer):
        async def propose_parents(
            self, children: Sequence[ClusterLabel], desired: int
        ) -> list[str]:
            return ["Cooking recipes", "cooking Recipes.", '"Cooking recipes"', "Travel"]

    clusters, cents = base()
    h = await build_hierarchy(clusters, cents, namer=Duplicating(), embed=embed, max_top=6)
    assert h.report.merged > 0
    assert len([c for c in h.clusters if c.parent_id is None]) <= 2


def test_helpers() -> None:
    assert normal_text(' "Cooking  Recipes." ') == "cooking recipes"
    assert parent_id(1, ["b", "a"]) == parent_id(1, ["a", "b"]) != parent_id(2, ["a", "b"])
    assert target_parents(1000, 10, 5) == 200
    assert target_parents(12, 10, 5) == 6
    vectors = embed([f"word{i}" for i in range(100)])
    hoods = neighbourhoods(vectors, 10, seed=0)
    assert sorted(i for h in hoods for i in h) == list(range(100))
    assert max(len(h) for h in hoods) <= 20


def test_neighbourhoods_of_identical_points_are_chunked() -> None:
    same = np.ones((50, 4), dtype=np.float32)
    hoods = neighbourhoods(same, 10, seed=0)
    assert sorted(i for h in hoods for i in h) == list(range(50))
    assert max(len(h) for h in hoods) <= 10


class OneParentPerChild(OfflineParentNamer):
    """Proposes every child's own name and picks it: without caps no level would shrink."""

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        return [c.name for c in children]

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        return child.name if child.name in candidates else candidates[0]


async def test_every_level_shrinks_whatever_the_namer_proposes() -> None:
    clusters, cents = base()
    h = await build_hierarchy(
        clusters, cents, namer=OneParentPerChild(), embed=embed, max_top=2, neighbourhood_size=8
    )
    check_tree(h, clusters, 2)
    sizes = [sum(1 for c in h.clusters if c.level == lv) for lv in range(h.report.levels + 1)]
    assert all(b < a for a, b in itertools.pairwise(sizes))
