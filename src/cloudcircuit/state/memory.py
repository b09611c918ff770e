"""``memory://``: a process-local state store for tests and quick runs without a file.

Values are kept encoded (the same JSON as the durable backends), so what a test sees here is
what SQLite or Redis would return: a tuple comes back as a list, a datetime as aware UTC.
Thread-safe; not shared between processes (use SQLite for that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

__all__ = ["MemoryStore"]


class MemoryStore:
    """Dict-backed :class:`~cloudcircuit.providers.StateStore` with TTLs and transactions.

    ``clock`` returns seconds (default :func:`time.monotonic`); tests may pass their own.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        # key -> (encoded value, expiry on the clock or None)
        self._kv: dict[str, tuple[str, float | None]] = {}
        # run id -> encoded entries in append order; dict order = first append order
        self._journal: dict[str, list[str]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return "MemoryStore()"

    # -- helpers ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("memory:// state store is closed")

    def _live(self, key: str) -> str | None:
        item = self._kv.get(key)
        if item is None:
            return None
        text, expires = item
        if expires is not None and self._clock() >= expires:
            del self._kv[key]
            return None
        return text

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    # -- StateStore -------------------------------------------------------------------------

    def get(self, key: str) -> Any | None:
        with self._lock:
            self._check_open()
            text = self._live(key)
            return None if text is None else decode_value(text, where=key)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        with self._lock:
            self._check_open()
            self._kv[key] = (text, self._expiry(ttl))

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        with self._lock:
            self._check_open()
            if self._live(key) is not None:
                return False
            self._kv[key] = (text, self._expiry(ttl))
            return True

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            self._check_open()
            text = self._live(key)
            expires = None
            current = 0
            if text is not None:
                current_value = decode_value(text, where=key)
                if isinstance(current_value, bool) or not isinstance(current_value, int):
                    raise StateError(f"state key {key!r} holds a non-integer; cannot increment")
                current = current_value
                expires = self._kv[key][1]
            new = current + int(amount)
            self._kv[key] = (str(new), expires)
            return new

    def delete(self, key: str) -> None:
        with self._lock:
            self._check_open()
            self._kv.pop(key, None)

    def append_journal(self, entry: JournalEntry) -> None:
        text = encode_entry(entry)
        with self._lock:
            self._check_open()
            self._journal.setdefault(entry.run_id, []).append(text)

    def journal(self, run_id: str) -> list[JournalEntry]:
        with self._lock:
            self._check_open()
            return [decode_entry(text) for text in self._journal.get(run_id, [])]

    def runs(self, limit: int = 20) -> list[str]:
        with self._lock:
            self._check_open()
            newest_first = list(reversed(self._journal))
            return newest_first[: max(0, limit)]

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[MemoryStore]:
        """All or nothing: an exception inside restores every key and the journal.

        Other threads wait for the transaction to end (the lock is held throughout).
        """
        with self._lock:
            self._check_open()
            kv = dict(self._kv)
            journal = {run: list(lines) for run, lines in self._journal.items()}
            try:
                yield self
            except BaseException:
                self._kv = kv
                self._journal = journal
                raise
