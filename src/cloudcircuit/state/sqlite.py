"""``sqlite:///path``: the embedded default state store, one file, safe across processes.

One SQLite file in WAL mode holds three things: ``kv`` (JSON values with an optional expiry;
counters are integer values in the same table, so ``get`` after ``incr`` returns the count),
and ``journal`` (one row per enforcement journal line, in append order). Every write runs in
``BEGIN IMMEDIATE`` so concurrent scans in several processes serialize instead of losing
updates, and :meth:`SQLiteStore.transaction` groups writes so a failed scan leaves nothing
half-written. Expiry uses wall-clock time because several processes share the file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloudcircuit.errors import StateError
from cloudcircuit.providers import JournalEntry
from cloudcircuit.state.codec import (
    check_ttl,
    decode_entry,
    decode_value,
    encode_entry,
    encode_value,
)

__all__ = ["SQLiteStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv ( key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)",
    "CREATE TABLE IF NOT EXISTS journal ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " phase TEXT NOT NULL, entry TEXT NOT NULL, written_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS journal_run ON journal (run_id, id)",
)


class SQLiteStore:
    """:class:`~cloudcircuit.providers.StateStore` on one SQLite file (``":memory:"`` works too).

    ``busy_timeout`` is how long a writer waits for another process's transaction (seconds).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(
                    f"cannot create the directory of state file {path}: {exc}"
                ) from exc
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state file {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"state file {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run a write in its own IMMEDIATE transaction, or inside the open one."""
        with self._lock:
            conn = self._connection()
            if self._depth:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _fail(self, what: str, exc: sqlite3.Error) -> StateError:
        return StateError(f"state file {self.path}: {what} failed: {exc}")

    def _live_row(self, conn: sqlite3.Connection, key: str) -> tuple[str, float | None] | None:
        row = conn.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value, expires = row
        if expires is not None and self._clock() >= expires:
            return None
        return str(value), expires

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    # -- StateStore -------------------------------------------------------------------------

    def get(self, key: str) -> Any | None:
        with self._lock:
            try:
                row = self._live_row(self._connection(), key)
            except sqlite3.Error as exc:
                raise self._fail(f"get {key!r}", exc) from exc
        return None if row is None else decode_value(row[0], where=key)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                    " expires_at = excluded.expires_at",
                    (key, text, self._expiry(ttl)),
                )
        except sqlite3.Error as exc:
            raise self._fail(f"set {key!r}", exc) from exc

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        try:
            with self._write() as conn:
                if self._live_row(conn, key) is not None:
                    return False
                conn.execute(
                    "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                    (key, text, self._expiry(ttl)),
                )
                return True
        except sqlite3.Error as exc:
            raise self._fail(f"set_if_absent {key!r}", exc) from exc

    def incr(self, key: str, amount: int = 1) -> int:
        try:
            with self._write() as conn:
                row = self._live_row(conn, key)
                current, expires = 0, None
                if row is not None:
                    value = decode_value(row[0], where=key)
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise StateError(f"state key {key!r} holds a non-integer; cannot increment")
                    current, expires = value, row[1]
                new = current + int(amount)
                conn.execute(
                    "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                    (key, str(new), expires),
                )
                return new
        except sqlite3.Error as exc:
            raise self._fail(f"incr {key!r}", exc) from exc

    def delete(self, key: str) -> None:
        try:
            with self._write() as conn:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            raise self._fail(f"delete {key!r}", exc) from exc

    def append_journal(self, entry: JournalEntry) -> None:
        text = encode_entry(entry)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO journal (run_id, seq, phase, entry, written_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (entry.run_id, entry.seq, entry.phase, text, self._clock()),
                )
        except sqlite3.Error as exc:
            raise self._fail(f"append to the journal of run {entry.run_id!r}", exc) from exc

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._lock:
            try:
                rows = (
                    self._connection()
                    .execute("SELECT entry FROM journal WHERE run_id = ? ORDER BY id", (run_id,))
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise self._fail(f"read the journal of run {run_id!r}", exc) from exc
        return [decode_entry(row[0]) for row in rows]

    def runs(self, limit: int = 20) -> list[str]:
        with self._lock:
            try:
                rows = (
                    self._connection()
                    .execute(
                        "SELECT run_id FROM journal GROUP BY run_id ORDER BY MIN(id) DESC LIMIT ?",
                        (max(0, limit),),
                    )
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise self._fail("list runs", exc) from exc
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- extras -----------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete expired keys (reads already ignore them); returns how many were removed."""
        try:
            with self._write() as conn:
                cursor = conn.execute(
                    "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?",
                    (self._clock(),),
                )
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise self._fail("purge expired keys", exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[SQLiteStore]:
        """Group writes: all of them commit at the end, or none if an exception escapes.

        The outermost level holds the database write lock (``BEGIN IMMEDIATE``) for its whole
        duration, so keep it short; nested levels are savepoints.
        """
        with self._lock:
            conn = self._connection()
            depth = self._depth
            try:
                conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT cc_{depth}")
            except sqlite3.Error as exc:
                raise self._fail("begin a transaction", exc) from exc
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO cc_{depth}")
                    conn.execute(f"RELEASE cc_{depth}")
                raise
            self._depth -= 1
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE cc_{depth}")
            except sqlite3.Error as exc:
                raise self._fail("commit a transaction", exc) from exc
