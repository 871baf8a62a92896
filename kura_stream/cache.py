"""An on-disk cache (SQLite, WAL) of JSON values and byte strings, keyed by what produced them."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from pydantic import JsonValue

from kura_stream.types import SCHEMA_VERSION

logger = logging.getLogger(__name__)

_Kind = Literal["json", "bytes"]
_BATCH = 500  # SQLite's default limit on bound parameters is 999 (older builds)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    value BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""


def content_hash(content: str | bytes) -> str:
    """sha256 hex digest of content (str is UTF-8 encoded)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def make_key(namespace: str, content: str | bytes, *, producer: str, version: str = "") -> str:
    """The cache key of a value: everything that produced it, hashed.

    Args:
        namespace: What kind of value ("summary", "embedding", ...).
        content: The input the value was computed from (its full content, not an id).
        producer: The model or summariser identity (e.g. Summariser.name, Embedder.name).
        version: A prompt or algorithm version not already part of producer.

    Returns:
        sha256 hex of (namespace, sha256(content), producer, version, SCHEMA_VERSION).
    """
    parts = [namespace, content_hash(content), producer, version, SCHEMA_VERSION]
    return content_hash(json.dumps(parts, separators=(",", ":")))


class Cache:
    """A key-value cache in one SQLite file in WAL mode.

    One connection is shared behind a lock, so coroutines and worker threads of one process
    can use it at once; WAL lets other processes read while one writes (a busy writer is
    waited for up to `busy_timeout_s`). Every call is a short synchronous transaction.
    Values are JSON (get_json/set_json) or raw bytes (get_bytes/set_bytes); asking for a
    key stored with the other kind is a miss.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        """Open (or create) the cache file.

        Args:
            path: The SQLite file; its folder is created if missing.
            busy_timeout_s: How long a write waits for another process's write.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"cache {self.path} is closed")
        return self._conn

    def _get_many(self, keys: Sequence[str], kind: _Kind) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(unique), _BATCH):
                chunk = unique[i : i + _BATCH]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})",
                    (kind, *chunk),
                ).fetchall()
                found.update((k, bytes(v)) for k, v in rows)
            self.hits += len(found)
            self.misses += len(unique) - len(found)
        return found

    def _set_many(self, items: Iterable[tuple[str, bytes]], kind: _Kind, namespace: str) -> None:
        now = time.time()
        rows = [(k, namespace, kind, v, now) for k, v in items]
        if not rows:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO entries (key, namespace, kind, value, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get_json(self, key: str) -> JsonValue | None:
        """The JSON value stored under key, or None when there is none."""
        return self.get_many_json([key]).get(key)

    def get_many_json(self, keys: Sequence[str]) -> dict[str, JsonValue]:
        """The JSON values stored under keys (missing keys are left out)."""
        out: dict[str, JsonValue] = {}
        for key, raw in self._get_many(keys, "json").items():
            try:
                out[key] = json.loads(raw)
            except ValueError:
                logger.warning("cache %s: entry %s is not JSON; treated as a miss", self.path, key)
        return out

    def set_json(self, key: str, value: JsonValue, *, namespace: str) -> None:
        """Store a JSON value under key (replacing any value there)."""
        self.set_many_json({key: value}, namespace=namespace)

    def set_many_json(self, items: Mapping[str, JsonValue], *, namespace: str) -> None:
        """Store JSON values in one transaction."""
        encoded = (
            (k, json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode())
            for k, v in items.items()
        )
        self._set_many(encoded, "json", namespace)

    def get_bytes(self, key: str) -> bytes | None:
        """The bytes stored under key, or None when there are none."""
        return self._get_many([key], "bytes").get(key)

    def get_many_bytes(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The byte values stored under keys (missing keys are left out)."""
        return self._get_many(keys, "bytes")

    def set_bytes(self, key: str, value: bytes, *, namespace: str) -> None:
        """Store bytes under key (replacing any value there)."""
        self._set_many([(key, value)], "bytes", namespace)

    def set_many_bytes(self, items: Mapping[str, bytes], *, namespace: str) -> None:
        """Store byte values in one transaction."""
        self._set_many(items.items(), "bytes", namespace)

    def count(self, namespace: str | None = None) -> int:
        """Number of entries, all or in one namespace."""
        with self._lock:
            if namespace is None:
                row = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM entries WHERE namespace = ?", (namespace,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Checkpoint the WAL and close the file; further calls raise RuntimeError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


CACHE_FILE = "kura_stream_cache.sqlite"
"""The SQLite file that DiskCacheStrategy keeps in its folder."""


class DiskCacheStrategy(Cache):
    """Kura's disk cache by name: a Cache in `cache_dir`, with Kura's get/set of JSON values.

    Kura pickles any value into a diskcache folder; here a value is JSON (the stages store
    summaries and vectors through the Cache methods), so the file is readable and a value
    cannot run code when it is loaded.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        """Open (or create) the cache in `cache_dir` (created if missing)."""
        self.cache_dir = Path(cache_dir)
        super().__init__(self.cache_dir / CACHE_FILE)

    def get(self, key: str) -> JsonValue | None:
        """Kura's get: the JSON value under key, or None."""
        return self.get_json(key)

    def set(self, key: str, value: JsonValue) -> None:
        """Kura's set: store a JSON value under key."""
        self.set_json(key, value, namespace="kura")


CacheStrategy = Cache
"""Kura's base class name."""
