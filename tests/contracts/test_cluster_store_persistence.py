"""Opening ClusterStores: other dims, durability across processes, locks, and open_store."""

from __future__ import annotations

import inspect
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from qdrant_client import QdrantClient

from kura_stream.adapters import qdrant_store
from kura_stream.adapters.edge_store import EdgeClusterStore
from kura_stream.adapters.qdrant_store import QdrantClusterStore
from kura_stream.adapters.store_factory import open_store
from kura_stream.adapters.stores import DimensionMismatchError, StoreLockedError
from kura_stream.protocols import ClusterStore
from kura_stream.records import ClusterPoint
from kura_stream.settings import StoreSettings
from tests.contracts.test_cluster_store import DIM, convs, units

REPO = Path(__file__).resolve().parents[2]

# -- the same collections reopened with another dim ------------------------------------------


def test_qdrant_existing_collection_with_other_dim(tmp_path: Path) -> None:
    client = QdrantClient(location=":memory:")
    QdrantClusterStore(client, "t", DIM)
    with pytest.raises(DimensionMismatchError, match=rf"t_conversations.*{DIM}-d.*{DIM * 2}-d"):
        QdrantClusterStore(client, "t", DIM * 2)
    client.close()


def test_edge_existing_store_with_other_dim(tmp_path: Path) -> None:
    EdgeClusterStore(tmp_path, DIM).close()
    with pytest.raises(DimensionMismatchError, match=str(tmp_path)):
        EdgeClusterStore(tmp_path, DIM * 2)
    EdgeClusterStore(tmp_path, DIM).close()  # a failed open released the lock


# -- persistent implementations: durability across processes --------------------------------

# name -> (a line of code that opens it as `store` at {path} in a subprocess, the same here)
Opener = tuple[str, Callable[[Path], ClusterStore]]
EDGE = "from kura_stream.adapters.edge_store import EdgeClusterStore as E; store = E({path!r}, %d"
PERSISTENT: dict[str, Opener] = {
    "edge": (EDGE % DIM + ")", lambda p: EdgeClusterStore(p, DIM)),
}
KILLABLE: dict[str, Opener] = {
    "edge-wal": PERSISTENT["edge"],
    "edge-no-fsync": (
        EDGE % DIM + ", durability='none')",
        lambda p: EdgeClusterStore(p, DIM, durability="none"),
    ),
    "edge-checkpoint-every-write": (
        EDGE % DIM + ", checkpoint_interval_s=0.0)",
        lambda p: EdgeClusterStore(p, DIM, checkpoint_interval_s=0.0),
    ),
}


def dataset(n: int, clusters: int, dim: int, seed: int) -> tuple[list[Any], list[Any]]:
    """Deterministic conversations and clusters (shared with the writer subprocess)."""
    import numpy as np

    from kura_stream.records import ClusterMeta, ClusterPoint, ConversationPoint

    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n + clusters, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    conv = [
        ConversationPoint(f"chat-{i}", v[i], f"k{i % clusters}", {"i": i, "f": {"t": [i, "x"]}})
        for i in range(n)
    ]
    clus = [
        ClusterPoint(f"k{j}", v[n + j], ClusterMeta(name=f"cluster {j}", count=j))
        for j in range(clusters)
    ]
    return conv, clus


def run_script(body: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    header = "from __future__ import annotations\n"
    script = header + inspect.getsource(dataset) + "\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_writes_survive_process_exit(name: str, tmp_path: Path) -> None:
    open_code, reopen = PERSISTENT[name]
    writer = run_script(
        f"""
        {open_code.format(path=str(tmp_path))}
        conv, clus = dataset(1000, 20, {DIM}, 5)
        for start in range(0, 1000, 100):
            store.upsert_conversations(conv[start : start + 100])
        store.upsert_clusters(clus)
        store.close()
        """
    )
    _, err = writer.communicate(timeout=180)
    assert writer.returncode == 0, err
    conv, clus = dataset(1000, 20, DIM, 5)
    store = reopen(tmp_path)
    try:
        assert store.count_conversations() == 1000
        assert store.count_conversations("k7") == 50
        got = {p.chat_id: p for batch in store.iter_conversations(300) for p in batch}
        assert len(got) == 1000
        for p in conv:
            np.testing.assert_allclose(got[p.chat_id].vector, p.vector, atol=1e-6)
            assert got[p.chat_id].cluster_id == p.cluster_id
            assert got[p.chat_id].payload == p.payload
        stored = {c.cluster_id: c for c in store.list_clusters()}
        assert len(stored) == 20
        for c in clus:
            np.testing.assert_allclose(stored[c.cluster_id].centroid, c.centroid, atol=1e-6)
            assert stored[c.cluster_id].meta == c.meta
        assert store.search_conversations(conv[123].vector, 1)[0].id == "chat-123"
    finally:
        store.close()


@pytest.mark.parametrize("name", list(KILLABLE))
def test_hard_killed_writer_loses_nothing_acknowledged(name: str, tmp_path: Path) -> None:
    open_code, reopen = KILLABLE[name]
    writer = run_script(
        f"""
        {open_code.format(path=str(tmp_path))}
        conv, clus = dataset(100_000, 20, {DIM}, 11)
        for b in range(0, 1000):
            store.upsert_conversations(conv[b * 100 : (b + 1) * 100])
            store.upsert_clusters([clus[b % 20]])
            print("ACK", b, flush=True)
        """
    )
    assert writer.stdout is not None
    acked = -1
    for line in writer.stdout:
        acked = int(line.split()[1])
        if acked >= 12:
            break
    writer.send_signal(signal.SIGKILL)  # no close(), no flush: the process just vanishes
    writer.wait(timeout=30)
    assert acked >= 12, writer.stderr.read() if writer.stderr else ""
    conv, clus = dataset(100_000, 20, DIM, 11)
    store = reopen(tmp_path)
    try:
        want = conv[: (acked + 1) * 100]
        got = store.get_conversations([p.chat_id for p in want])
        assert len(got) == len(want)
        for g, p in zip(got, want, strict=True):
            np.testing.assert_allclose(g.vector, p.vector, atol=1e-6)
            assert g.payload == p.payload
        assert store.count_conversations() >= len(want)
        assert len(store.get_clusters([c.cluster_id for c in clus[: acked + 1]])) == min(
            acked + 1, 20
        )
    finally:
        store.close()


def test_edge_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    holder = run_script(
        f"""
        import sys
        from kura_stream.adapters.edge_store import EdgeClusterStore
        store = EdgeClusterStore({str(tmp_path)!r}, {DIM})
        print("READY", flush=True)
        sys.stdin.read()
        store.close()
        """,
        stdin=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "READY"
        with pytest.raises(StoreLockedError) as caught:
            EdgeClusterStore(tmp_path, DIM)
        message = str(caught.value)
        assert str(tmp_path.resolve()) in message
        assert "service" in message
        assert str(holder.pid) in message
    finally:
        holder.communicate(input="", timeout=60)
    assert holder.returncode == 0
    EdgeClusterStore(tmp_path, DIM).close()  # free again once the holder closed


def test_edge_second_open_in_same_process_is_refused(tmp_path: Path) -> None:
    first = EdgeClusterStore(tmp_path, DIM)
    try:
        with pytest.raises(StoreLockedError, match=str(os.getpid())):
            EdgeClusterStore(tmp_path, DIM)
    finally:
        first.close()
    EdgeClusterStore(tmp_path, DIM).close()


def test_edge_wal_fsync_finds_the_wal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Guards the default durability against an engine upgrade that moves the WAL files.
    with caplog.at_level(logging.WARNING):
        store = EdgeClusterStore(tmp_path, DIM)
        store.upsert_conversations(convs(3))
        store.upsert_clusters([ClusterPoint("k", units(1)[0])])
        store.close()
    assert "no WAL segment files" not in caplog.text


# -- open_store ------------------------------------------------------------------------------


def test_open_store_embedded(tmp_path: Path) -> None:
    store = open_store(StoreSettings(path=tmp_path, collection_prefix="p"), DIM)
    try:
        assert isinstance(store, EdgeClusterStore)
        assert store.dim == DIM
        assert (tmp_path / "p_conversations").is_dir()
        assert (tmp_path / "p_clusters").is_dir()
    finally:
        store.close()


def test_open_store_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_server_client(url: str, api_key: str | None) -> QdrantClient:
        seen.update(url=url, api_key=api_key)
        return QdrantClient(location=":memory:")

    monkeypatch.setattr(qdrant_store, "server_client", fake_server_client)
    settings = StoreSettings(
        qdrant_url="http://qdrant:6333", qdrant_api_key=SecretStr("s3cret"), collection_prefix="q"
    )
    store = open_store(settings, DIM)
    try:
        assert isinstance(store, QdrantClusterStore)
        assert seen == {"url": "http://qdrant:6333", "api_key": "s3cret"}
        store.upsert_clusters([ClusterPoint("k", units(1)[0])])
        assert [c.cluster_id for c in store.list_clusters()] == ["k"]
    finally:
        store.close()
