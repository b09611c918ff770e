"""``sqlite:///path``: the embedded default ledger (one file, WAL, many processes).

Each operation is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so
two processes never interleave a check and a hold, and a busy database is waited on for at
most the ledger timeout (then the operation fails closed with LedgerUnavailableError).
``synchronous=NORMAL`` (the WAL default) survives a crash of the process; add
``?synchronous=FULL`` to the URL to survive power loss as well, at a cost per commit.
New files use 1 KB pages (each transaction appends its dirty pages to the WAL, and ours touch
a few small rows), and the WAL is checkpointed every 10,000 pages (about 10 MB) instead of
SQLite's 1,000: each checkpoint syncs the database file, and at a thousand small transactions a
second the default cadence made those syncs the main cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cloudcircuit.errors import ConfigError, LedgerUnavailableError
from cloudcircuit.quota.backends.base import Op, ScopeArgs
from cloudcircuit.quota.backends.engine import Record, apply

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_requests (
    request TEXT PRIMARY KEY, state TEXT NOT NULL, exp INTEGER, keep INTEGER NOT NULL,
    record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS quota_requests_held ON quota_requests (exp) WHERE state = 'held';
CREATE TABLE IF NOT EXISTS quota_held (scope TEXT PRIMARY KEY, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quota_committed (
    scope TEXT NOT NULL, win TEXT NOT NULL, bucket INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (scope, win, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quota_limits (scope TEXT PRIMARY KEY, amount INTEGER NOT NULL);
"""
_FORGET_EVERY = 1000  # operations between sweeps of outcomes past their retention


class _SQLiteStore:
    """The engine's Store protocol as SQL on one connection (inside its transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.due_prunes: list[tuple[str, str, int]] = []

    def prune(self) -> None:
        """Drop committed buckets that left their window (part of the periodic sweep)."""
        latest: dict[tuple[str, str], int] = {}
        for key, window, lo in self.due_prunes:
            latest[(key, window)] = max(lo, latest.get((key, window), lo))
        self.conn.executemany(
            "DELETE FROM quota_committed WHERE scope = ? AND win = ? AND bucket < ?",
            [(key, window, lo) for (key, window), lo in latest.items()],
        )
        self.due_prunes = []

    def get_request(self, request: str) -> Record | None:
        row = self.conn.execute(
            "SELECT record FROM quota_requests WHERE request = ?", (request,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_request(self, request: str, record: Record, keep_until_ms: int) -> None:
        exp = int(record["exp"]) if "exp" in record else None
        self.conn.execute(
            "INSERT INTO quota_requests (request, state, exp, keep, record) VALUES (?,?,?,?,?)"
            " ON CONFLICT (request) DO UPDATE SET state = excluded.state, exp = excluded.exp,"
            " keep = excluded.keep, record = excluded.record",
            (request, record["state"], exp, keep_until_ms, json.dumps(record)),
        )

    def due_holds(self, now_ms: int, limit: int) -> list[tuple[str, Record]]:
        rows = self.conn.execute(
            "SELECT request, record FROM quota_requests WHERE state = 'held' AND exp <= ?"
            " ORDER BY exp LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [(request, dict(json.loads(record))) for request, record in rows]

    def add_held(self, scopes: Sequence[str], delta: int) -> None:
        rows = ",".join("(?, ?)" for _ in scopes)
        params: list[object] = []
        for scope in scopes:
            params.extend((scope, delta))
        self.conn.execute(
            f"INSERT INTO quota_held (scope, amount) VALUES {rows}"
            " ON CONFLICT (scope) DO UPDATE SET amount = amount + excluded.amount",
            params,
        )

    def states(self, scopes: Sequence[ScopeArgs]) -> list[tuple[int, int, int | None]]:
        # one statement for every scope of the chain: committed sum, held, stored limit
        rows = " UNION ALL ".join(
            "SELECT ? AS i, ? AS scope, ? AS win, ? AS lo, ? AS hi" for _ in scopes
        )
        params: list[object] = []
        for index, scope in enumerate(scopes):
            params.extend((index, scope.key, scope.window, scope.lo, scope.hi))
        found = self.conn.execute(
            f"WITH s AS ({rows}) SELECT s.i,"
            " (SELECT COALESCE(SUM(c.amount), 0) FROM quota_committed c"
            "   WHERE c.scope = s.scope AND c.win = s.win AND c.bucket BETWEEN s.lo AND s.hi),"
            " (SELECT h.amount FROM quota_held h WHERE h.scope = s.scope),"
            " (SELECT l.amount FROM quota_limits l WHERE l.scope = s.scope)"
            " FROM s ORDER BY s.i",
            params,
        ).fetchall()
        return [(int(c), int(h or 0), None if lim is None else int(lim)) for _, c, h, lim in found]

    def add_committed(self, scopes: Sequence[ScopeArgs], delta: int) -> None:
        # buckets older than a window are ignored by states() and dropped by the sweep
        self.due_prunes.extend((scope.key, scope.window, scope.lo) for scope in scopes)
        params: list[object] = []
        for scope in scopes:
            params.extend((scope.key, scope.window, scope.hi, delta))
        rows = ",".join("(?, ?, ?, ?)" for _ in scopes)
        self.conn.execute(
            f"INSERT INTO quota_committed (scope, win, bucket, amount) VALUES {rows}"
            " ON CONFLICT (scope, win, bucket) DO UPDATE SET amount = amount + excluded.amount",
            params,
        )

    def set_limit(self, scope: str, limit: int | None) -> None:
        if limit is None:
            self.conn.execute("DELETE FROM quota_limits WHERE scope = ?", (scope,))
        else:
            self.conn.execute(
                "INSERT INTO quota_limits (scope, amount) VALUES (?, ?)"
                " ON CONFLICT (scope) DO UPDATE SET amount = excluded.amount",
                (scope, limit),
            )


def _parse(url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not url.startswith("sqlite:///"):
        raise ConfigError(f"ledger url: expected sqlite:///PATH, got {url!r}")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path:
        raise ConfigError(f"ledger url: no file path in {url!r}")
    sync = parse_qs(parts.query).get("synchronous", ["NORMAL"])[0].upper()
    if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ConfigError(f"ledger url: synchronous must be NORMAL, FULL or EXTRA, got {sync!r}")
    return Path(path), sync


class SQLiteBackend:
    """SQLite file store; one connection per thread and process, WAL mode."""

    name = "sqlite"

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self.path, self._sync = _parse(url)
        self.timeout = timeout
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            # new files only (before WAL fixes it): small pages, less WAL per transaction
            conn.execute("PRAGMA page_size=1024")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.execute("PRAGMA wal_autocheckpoint=10000")
        except sqlite3.Error as exc:
            raise LedgerUnavailableError(f"sqlite ledger {self.path}: {exc}") from exc
        return conn

    def _conn(self) -> tuple[sqlite3.Connection, _SQLiteStore]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = self._connect()
            local.store = _SQLiteStore(local.conn)
            local.pid = os.getpid()
            local.count = 0
        return local.conn, local.store

    def execute(self, op: Op) -> list[object]:
        conn, store = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                reply = apply(store, op)
                self._local.count += 1
                if self._local.count % _FORGET_EVERY == 0:
                    store.prune()
                    # old outcomes sit at low rowids: a bounded sweep finds them fast
                    conn.execute(
                        "DELETE FROM quota_requests WHERE rowid IN (SELECT rowid FROM"
                        " quota_requests WHERE keep < ? AND state != 'held' LIMIT 2000)",
                        (op.now_ms,),
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailableError(f"sqlite ledger {self.path}: {exc}") from exc
        return reply

    async def aexecute(self, op: Op) -> list[object]:
        return await asyncio.to_thread(self.execute, op)

    def ping(self) -> bool:
        try:
            conn, _ = self._conn()
            conn.execute("SELECT 1").fetchone()
        except (sqlite3.Error, LedgerUnavailableError):
            return False
        return True

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
            self._local.pid = None
