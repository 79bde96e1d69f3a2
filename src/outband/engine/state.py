"""Persistent engine state: settings, logs and accounts in SQLite, one transaction per acknowledged change.

Theory of operation: everything a client changes (a Put, a user added, an alarm set) and everything AMT keeps
(audit and event logs, provisioning) is written inside one SQLite transaction *before* the reply is sent.  A
crash (even kill -9 in the middle of a Put) therefore leaves either the old or the new value, never a mixture,
and never loses a change that was acknowledged.  WAL journalling with ``synchronous=NORMAL`` is durable against
process crashes, which is the failure an emulator meets; ``durable=True`` asks for FULL (power loss).

Many engines can share one database file (fleet mode), each under its own ``engine`` id, so ten thousand
engines cost one SQLite connection rather than ten thousand.  Values are JSON documents; the in-memory copy
of the small ``kv`` table is the read path, so Gets never touch the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS kv (
    engine TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (engine, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    engine TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (engine, kind, seq)
) WITHOUT ROWID;
"""

Json = Any


class Database:
    """One SQLite file, shared by every :class:`StateStore` on it."""

    def __init__(self, path: Path | str, *, durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL" if self.path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(SCHEMA)
        self.lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction; nested uses join the outermost one, which commits or rolls back everything."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class StateStore:
    """The state of one engine inside a :class:`Database`."""

    def __init__(self, db: Database, engine_id: str) -> None:
        self.db = db
        self.engine_id = engine_id
        rows = db.conn.execute("SELECT key, value FROM kv WHERE engine = ?", (engine_id,)).fetchall()
        self._kv: dict[str, Json] = {k: json.loads(v) for k, v in rows}
        self._pending: dict[str, Json] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes; the in-memory view changes only when the whole group commits."""
        outer = self._pending is None
        if outer:
            self._pending = {}
        try:
            with self.db.transaction():
                yield
        except BaseException:
            if outer:
                self._pending = None
            raise
        if outer:
            assert self._pending is not None
            self._kv.update(self._pending)
            for key in [k for k, v in self._pending.items() if v is None]:
                self._kv.pop(key, None)
            self._pending = None

    def get(self, key: str, default: Json = None) -> Json:
        if self._pending is not None and key in self._pending:
            value = self._pending[key]
            return default if value is None else value
        return self._kv.get(key, default)

    def set(self, key: str, value: Json) -> None:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        with self.transaction():
            self.db.conn.execute(
                "INSERT INTO kv (engine, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (engine, key) DO UPDATE SET value = excluded.value",
                (self.engine_id, key, text),
            )
            assert self._pending is not None
            self._pending[key] = json.loads(text)

    def delete(self, key: str) -> None:
        with self.transaction():
            self.db.conn.execute("DELETE FROM kv WHERE engine = ? AND key = ?", (self.engine_id, key))
            assert self._pending is not None
            self._pending[key] = None

    def keys(self, prefix: str = "") -> list[str]:
        found = {k for k in self._kv if k.startswith(prefix)}
        for key, value in (self._pending or {}).items():
            if key.startswith(prefix):
                if value is None:
                    found.discard(key)
                else:
                    found.add(key)
        return sorted(found)

    # ------------------------------------------------------------------------------------------ logs

    def append_log(self, kind: str, record: bytes, *, capacity: int | None = None) -> int:
        """Append a binary record to log ``kind``; with ``capacity``, the oldest records roll off."""
        with self.transaction():
            conn = self.db.conn
            row = conn.execute(
                "SELECT MAX(seq) FROM log WHERE engine = ? AND kind = ?", (self.engine_id, kind)
            ).fetchone()
            seq = (row[0] or 0) + 1
            conn.execute(
                "INSERT INTO log (engine, kind, seq, record) VALUES (?, ?, ?, ?)", (self.engine_id, kind, seq, record)
            )
            if capacity is not None:
                conn.execute(
                    "DELETE FROM log WHERE engine = ? AND kind = ? AND seq <= ?", (self.engine_id, kind, seq - capacity)
                )
        return seq

    def read_log(self, kind: str, *, start: int = 0, limit: int = -1) -> list[bytes]:
        """Records oldest first, skipping the first ``start`` of those still kept."""
        rows = self.db.conn.execute(
            "SELECT record FROM log WHERE engine = ? AND kind = ? ORDER BY seq LIMIT ? OFFSET ?",
            (self.engine_id, kind, limit, start),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def count_log(self, kind: str) -> int:
        row = self.db.conn.execute(
            "SELECT COUNT(*) FROM log WHERE engine = ? AND kind = ?", (self.engine_id, kind)
        ).fetchone()
        return int(row[0])

    def clear_log(self, kind: str) -> None:
        with self.transaction():
            self.db.conn.execute("DELETE FROM log WHERE engine = ? AND kind = ?", (self.engine_id, kind))
