"""A clean shutdown's saved assigner state: taken once at the next start, only if it fits."""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kura_stream.adapters.edge_store import EdgeClusterStore
from kura_stream.adapters.state_file import StateFile, state_file_for
from kura_stream.service.assigner import AssignBatch, Assigner
from kura_stream.service.stream import StreamService
from kura_stream.stages.assign import AssignParams, ClusterState
from kura_stream.stages.assign_state_arrays import state_arrays
from tests.fakes.memory_store import MemoryClusterStore
from tests.unit.test_assigner import DIM, _items

# Adaptive thresholds: the window of recent arrivals is part of what is saved.
PARAMS = AssignParams(
    min_birth_size=3, birth_window=40, birth_min_window=10, join_min_members=20, max_outlier_pool=30
)


def _same_state(a: ClusterState, b: ClusterState) -> None:
    ours, theirs = state_arrays(a), state_arrays(b)
    assert ours.keys() == theirs.keys()
    for name, array in ours.items():
        assert np.array_equal(array, theirs[name]), name


def _outcome(batch: AssignBatch, known: list[str]) -> list[tuple[str, str | None, float]]:
    """Assignments with born clusters named by order of birth (their ids are random)."""
    names: dict[str, str] = {c: c for c in known}
    rows = []
    for a in batch.assignments:
        cid = a.cluster_id
        if cid is not None and cid not in names:
            names[cid] = f"born{len(names)}"
        rows.append((a.chat_id, names.get(cid) if cid else None, a.similarity))
    return rows


def test_a_saved_state_assigns_the_next_arrivals_as_a_rebuilt_one(tmp_path: Path) -> None:
    first, copied = tmp_path / "a", tmp_path / "b"
    store = EdgeClusterStore(first, DIM, durability="none")
    Assigner(store, PARAMS, min_size_shown=3).process(_items(120, centres=4))
    store.close()  # a crash: nothing saved
    store = EdgeClusterStore(first, DIM, durability="none")
    Assigner(store, PARAMS, min_size_shown=3, saved=state_file_for(store)).close()
    store.close()
    shutil.copytree(first, copied)
    StateFile(copied).discard()  # the copy restarts as after a crash
    stores = [EdgeClusterStore(p, DIM, durability="none") for p in (first, copied)]
    try:
        loaded, rebuilt = (
            Assigner(s, PARAMS, min_size_shown=3, saved=state_file_for(s)) for s in stores
        )
        assert not list(first.glob("assigner-state*"))  # taken: never read twice
        _same_state(loaded.state, rebuilt.state)
        known = list(loaded.state.ids)
        arrivals = _items(90, centres=6, seed=1, prefix="n")
        for start in range(0, 90, 30):
            ours = loaded.process(arrivals[start : start + 30])
            theirs = rebuilt.process(arrivals[start : start + 30])
            assert _outcome(ours, known) == _outcome(theirs, known)
        assert len(loaded.state.ids) > len(known)  # births happened
    finally:
        for s in stores:
            s.close()


def test_a_live_state_round_trips_with_its_duplicates_count(tmp_path: Path) -> None:
    store = MemoryClusterStore(DIM)
    items = _items(150, centres=5)
    live = Assigner(store, PARAMS, min_size_shown=3, saved=StateFile(tmp_path))
    live.process(items[:100])
    live.process(items[:7])  # resent: duplicates counted in the store
    live.process([*items[100:], *items[100:103]])  # and 3 twice in one batch
    live.close()
    twin = copy.deepcopy(store)
    restarted = Assigner(twin, PARAMS, min_size_shown=3, saved=StateFile(tmp_path))
    assert list(tmp_path.iterdir()) == []
    _same_state(live.state, restarted.state)
    assert restarted.duplicates_stored == live.duplicates_stored == 10
    assert Assigner(copy.deepcopy(store), PARAMS, min_size_shown=3).duplicates_stored == 10
    known = list(live.state.ids)
    arrivals = _items(60, centres=7, seed=2, prefix="n")
    assert _outcome(live.process(arrivals), known) == _outcome(restarted.process(arrivals), known)


def _saved(tmp_path: Path) -> MemoryClusterStore:
    store = MemoryClusterStore(DIM)
    assigner = Assigner(store, PARAMS, min_size_shown=3, saved=StateFile(tmp_path))
    assigner.process(_items(60))
    assigner.close()
    return store


@pytest.mark.parametrize("change", ["count", "format", "params", "garbled", "truncated"])
def test_a_state_that_does_not_fit_is_discarded_and_the_store_rebuilt(
    tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _saved(tmp_path)
    params = PARAMS
    header = tmp_path / "assigner-state.json"
    if change == "count":  # written after the save (a crash of a later run, say)
        Assigner(store, PARAMS, min_size_shown=3).process(_items(5, prefix="late"))
    elif change == "format":
        header.write_text(header.read_text().replace('"format": 1', '"format": 0'))
    elif change == "params":
        params = AssignParams(min_birth_size=4, birth_window=40, birth_min_window=10)
    elif change == "garbled":
        (tmp_path / "assigner-state.npz").write_bytes(b"not an npz")
    else:
        arrays = tmp_path / "assigner-state.npz"
        arrays.write_bytes(arrays.read_bytes()[:-200])
    expected = Assigner(copy.deepcopy(store), params, min_size_shown=3).state
    with caplog.at_level(logging.INFO):
        opened = Assigner(store, params, min_size_shown=3, saved=StateFile(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert "rebuilding" in caplog.text
    _same_state(opened.state, expected)
    assert opened.state.total == store.count_conversations()


def test_no_saved_state_beside_a_store_without_a_folder() -> None:
    assert state_file_for(MemoryClusterStore(DIM)) is None


@pytest.mark.parametrize(("settled", "calls"), [(True, ["save", "store"]), (False, ["store"])])
def test_a_service_saves_the_state_at_close_unless_a_recompute_is_unfinished(
    settled: bool, calls: list[str]
) -> None:
    done: list[str] = []
    service = SimpleNamespace(
        recomputer=SimpleNamespace(settled=settled),
        assigner=SimpleNamespace(close=lambda: done.append("save")),
        store=SimpleNamespace(close=lambda: done.append("store")),
        closers=[],
    )
    StreamService.close(service)  # type: ignore[arg-type]
    assert done == calls
