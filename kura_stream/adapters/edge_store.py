"""EdgeClusterStore: the ClusterStore embedded in-process on qdrant-edge (Qdrant's engine + WAL)."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, cast

import qdrant_edge as qe

from kura_stream.adapters.point_store import Encoded, PointStore, RawPoint
from kura_stream.adapters.stores import (
    MEMBER_FIELDS,
    DimensionMismatchError,
    StoreError,
    StoreLockedError,
    check_vector,
    collection_names,
    point_id,
)
from kura_stream.records import Hit, Vector

logger = logging.getLogger(__name__)

Durability = Literal["wal", "flush", "none"]
"""What a write waits for before it returns.

wal: the engine's write-ahead log is fsync'd (survives a process kill and an OS crash or power
    loss; measured 10-20 ms per write call). The WAL is an mmap'd file, so on Linux an fsync of
    it writes back exactly what the engine's own WAL flush (msync) would.
flush: the engine's own flush(): WAL and all segments fsync'd (measured 20-110 ms per call).
none: nothing extra; the WAL write is in the OS page cache, so a killed process loses
    nothing, but an OS crash or power loss may lose the last writes.
"""

_CLUSTER_FIELD = "cluster_id"
_LOCK_FILE = ".lock"


class _Shard(NamedTuple):
    engine: qe.EdgeShard
    path: Path


class EdgeClusterStore(PointStore[_Shard]):
    """Conversations and clusters in two qdrant-edge shards under one folder.

    `<path>/<prefix>_conversations` and `<path>/<prefix>_clusters` are shards with one unnamed
    cosine vector each; ids are uuid5 of the key (also in the payload) and cluster_id has a
    keyword payload index. Search is exact (the shards are never optimised into HNSW). Only one
    process may open a path: an advisory lock on `<path>/.lock` is held until close() or exit.
    """

    def __init__(
        self,
        path: Path | str,
        dim: int,
        *,
        prefix: str = "kura",
        durability: Durability = "wal",
        checkpoint_interval_s: float = 60.0,
        batch_size: int = 1024,
    ) -> None:
        """Open the store at path, creating it if missing.

        Args:
            path: The store's folder (Settings().store.path by default in open_store).
            dim: Vector length of both collections.
            prefix: Prefix of the two shard folders.
            durability: What each write waits for (see Durability).
            checkpoint_interval_s: At most this long between full engine flushes, which also
                let the engine truncate its WAL (so the WAL and replay on open stay small).
            batch_size: Points per engine update operation.

        Raises:
            StoreLockedError: another process (or another store object) has path open.
            DimensionMismatchError: the existing shards hold vectors of another length.
        """
        if dim < 1 or batch_size < 1:
            raise ValueError("dim and batch_size must be positive")
        self._path = Path(path).resolve()
        self._dim = dim
        self._durability = durability
        self._checkpoint_interval_s = checkpoint_interval_s
        self._batch_size = batch_size
        self._closed = False
        self._path.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire_lock(self._path)
        opened: list[_Shard] = []
        try:
            conv_name, clus_name = collection_names(prefix)
            opened.append(self._open_shard(self._path / conv_name, index_cluster_id=True))
            opened.append(self._open_shard(self._path / clus_name, index_cluster_id=False))
        except BaseException:
            for shard in opened:
                shard.engine.close()
            _release_lock(self._lock)
            raise
        self._conversations, self._clusters = opened
        self._last_checkpoint = time.monotonic()

    def _open_shard(self, shard_path: Path, *, index_cluster_id: bool) -> _Shard:
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self._dim, distance=qe.Distance.Cosine)
        )
        try:
            if (shard_path / "edge_config.json").exists():
                shard = qe.EdgeShard.load(str(shard_path), config)
            else:
                logger.info("creating embedded shard %s (%d-d, cosine)", shard_path, self._dim)
                shard = qe.EdgeShard.create(str(shard_path), config)
        except Exception as exc:
            text = str(exc)
            if "WouldBlock" in text:
                raise _locked_error(self._path, None) from exc
            if "incompatible" in text.lower():
                raise DimensionMismatchError(
                    f"the embedded store at {shard_path} was made for other vectors: {text}. "
                    f"This store needs {self._dim}-d cosine vectors; use another path or prefix"
                ) from exc
            raise StoreError(f"cannot open the embedded store at {shard_path}: {text}") from exc
        if index_cluster_id and _CLUSTER_FIELD not in shard.info().payload_schema:
            shard.update(
                qe.UpdateOperation.create_field_index(_CLUSTER_FIELD, qe.PayloadSchemaType.Keyword)
            )
        return _Shard(shard, shard_path)

    @property
    def path(self) -> Path:
        """The store's folder."""
        return self._path

    def flush(self) -> None:
        """Flush both shards fully (WAL and segments) and let the engine truncate its WAL."""
        self._check_open()
        for shard in (self._conversations, self._clusters):
            shard.engine.flush()
        self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        """Flush and close both shards and release the lock. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            for shard in (self._conversations, self._clusters):
                shard.engine.close()  # the engine flushes WAL and segments on close
        finally:
            _release_lock(self._lock)
        logger.debug("closed embedded store at %s", self._path)

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, handle: _Shard, encoded: Encoded) -> None:
        for start in range(0, len(encoded), self._batch_size):
            batch = [
                qe.Point(pid, vec, payload)
                for pid, vec, payload in encoded[start : start + self._batch_size]
            ]
            handle.engine.update(qe.UpdateOperation.upsert_points(batch))
        self._make_durable(handle)

    def _fetch(self, handle: _Shard, keys: Sequence[str]) -> list[RawPoint]:
        if not keys:
            return []
        ids: list[qe.PointId] = [point_id(k) for k in dict.fromkeys(keys)]
        records = handle.engine.retrieve(ids, with_payload=True, with_vector=True)
        return [(r.payload or {}, _vector(r)) for r in records]

    def _remove(self, handle: _Shard, keys: Sequence[str]) -> None:
        if not keys:
            return
        ids: list[qe.PointId] = [point_id(k) for k in dict.fromkeys(keys)]
        handle.engine.update(qe.UpdateOperation.delete_points(ids))
        self._make_durable(handle)

    def _count(self, handle: _Shard, cluster_id: str | None) -> int:
        request = qe.CountRequest(exact=True, filter=_cluster_filter(cluster_id))
        return int(handle.engine.count(request))

    def _scan(self, handle: _Shard, batch_size: int) -> Iterator[list[RawPoint]]:
        for records in _scroll(handle.engine, batch_size):
            yield [(r.payload or {}, _vector(r)) for r in records]

    def _scan_payloads(self, handle: _Shard, batch_size: int) -> Iterator[list[Mapping[str, Any]]]:
        for records in _scroll(handle.engine, batch_size, with_vector=False):
            yield [r.payload or {} for r in records]

    def _scan_members(self, handle: _Shard, batch_size: int) -> Iterator[list[RawPoint]]:
        for records in _scroll(handle.engine, batch_size, with_payload=MEMBER_FIELDS):
            yield [(r.payload or {}, _vector(r)) for r in records]

    def _relabel(self, handle: _Shard, moves: Mapping[str, str | None]) -> None:
        # set_payload rewrites one field in place: no payload or vector goes through Python.
        by_cluster: dict[str | None, list[qe.PointId]] = {}
        for chat_id, cluster_id in moves.items():
            by_cluster.setdefault(cluster_id, []).append(point_id(chat_id))
        for cluster_id, ids in by_cluster.items():
            for start in range(0, len(ids), self._batch_size):
                _set_cluster(handle.engine, ids[start : start + self._batch_size], cluster_id)
        self._make_durable(handle)  # once for all the moves

    def _scan_cluster(self, handle: _Shard, cluster_id: str, limit: int) -> list[RawPoint]:
        request = qe.ScrollRequest(
            limit=limit, filter=_cluster_filter(cluster_id), with_payload=True, with_vector=True
        )
        records, _ = handle.engine.scroll(request)
        return [(r.payload or {}, _vector(r)) for r in records]

    def _nearest(
        self, handle: _Shard, key: str, vector: Vector, limit: int, cluster_id: str | None
    ) -> list[Hit]:
        return _search(handle.engine, key, self._dim, vector, limit, cluster_id)

    def _make_durable(self, shard: _Shard) -> None:
        if time.monotonic() - self._last_checkpoint >= self._checkpoint_interval_s:
            self.flush()
        elif self._durability == "flush":
            shard.engine.flush()
        elif self._durability == "wal" and not _fsync_wal(shard.path / "wal"):
            # Another engine version may lay its WAL out differently: stay durable, slower.
            logger.warning("no WAL segment files in %s: flushing the shard instead", shard.path)
            self._durability = "flush"
            shard.engine.flush()


def _set_cluster(shard: qe.EdgeShard, ids: list[qe.PointId], cluster_id: str | None) -> None:
    try:
        shard.update(qe.UpdateOperation.set_payload(ids, {_CLUSTER_FIELD: cluster_id}))
    except Exception as exc:
        if "No point with id" not in str(exc):
            raise
        # Some were deleted meanwhile: move the ones still stored.
        found: list[qe.PointId] = [
            r.id for r in shard.retrieve(ids, with_payload=False, with_vector=False)
        ]
        if found:
            shard.update(qe.UpdateOperation.set_payload(found, {_CLUSTER_FIELD: cluster_id}))


def _fsync_wal(wal_dir: Path) -> bool:
    """Fsync a shard's WAL files and folder; False if the WAL layout is not the expected one.

    qdrant-edge 0.9 keeps its WAL as mmap'd segment files `wal/open-N` / `wal/closed-N` (and
    pre-allocates `wal/tmp-*` in the background). Its update() writes the WAL without syncing it;
    an fsync of those files writes back the mmap'd pages (Linux: msync and fsync are one path).
    """
    try:
        names = os.listdir(wal_dir)
    except FileNotFoundError:
        return False
    segments = [n for n in names if n.startswith(("open-", "closed-"))]
    if not segments:
        return False
    for name in segments:
        try:
            fd = os.open(wal_dir / name, os.O_RDONLY)
        except FileNotFoundError:  # a closed segment the engine just removed
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(wal_dir, os.O_RDONLY)  # new segment files' directory entries
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _acquire_lock(path: Path) -> IO[str]:
    handle = open(path / _LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until close
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or None
        handle.close()
        raise _locked_error(path, holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _release_lock(handle: IO[str]) -> None:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _locked_error(path: Path, holder: str | None) -> StoreLockedError:
    who = f"process {holder}" if holder else "another process"
    return StoreLockedError(
        f"the embedded store at {path} is already open in {who}; only one process may open it. "
        f"Go through the running kura-stream service (its HTTP API) instead of opening the "
        f"store directly, or stop the service first."
    )


def _cluster_filter(cluster_id: str | None) -> qe.Filter | None:
    if cluster_id is None:
        return None
    return qe.Filter(must=[qe.FieldCondition(key=_CLUSTER_FIELD, match=qe.MatchValue(cluster_id))])


def _vector(record: qe.Record) -> list[float]:
    vector: Any = record.vector
    if isinstance(vector, dict):  # named-vector form; the default vector's name is ""
        vector = vector.get("")
    if not isinstance(vector, list):
        raise StoreError(f"point {record.id} came back without its vector")
    return cast(list[float], vector)


def _scroll(
    shard: qe.EdgeShard,
    batch_size: int,
    *,
    with_payload: bool | list[str] = True,
    with_vector: bool = True,
) -> Iterator[list[qe.Record]]:
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    offset: qe.PointId | None = None
    while True:
        request = qe.ScrollRequest(
            offset=offset, limit=batch_size, with_payload=with_payload, with_vector=with_vector
        )
        records, offset = shard.scroll(request)
        if records:
            yield records
        if offset is None:
            return


def _search(
    shard: qe.EdgeShard,
    key: str,
    dim: int,
    vector: Vector,
    limit: int,
    cluster_id: str | None,
) -> list[Hit]:
    query = check_vector(vector, dim, "search query")
    if limit < 1:
        return []
    request = qe.QueryRequest(
        limit=limit,
        query=qe.Query.Nearest(query.tolist()),
        filter=_cluster_filter(cluster_id),
        with_payload=[key],
        with_vector=False,
    )
    return [Hit(id=str((p.payload or {})[key]), score=float(p.score)) for p in shard.query(request)]
