"""``redis://`` / ``rediss://``: state shared by many scanners (needs ``cloudcircuit[redis]``).

Layout under a configurable prefix (URL query ``?prefix=...``, default ``cloudcircuit:``):

- ``{prefix}kv:{key}``: the JSON value, with the TTL as a Redis expiry (``SET ... PX``);
  counters are the same keys (``INCRBY`` keeps an existing expiry, like the other backends);
- ``{prefix}journal:{run_id}``: a list of journal lines in append order;
- ``{prefix}runs``: a sorted set indexing runs by first-append order, and
  ``{prefix}runs:seq`` the counter that orders it.

:meth:`RedisStore.transaction` buffers ``set``, ``delete`` and ``append_journal`` and writes
them in one ``MULTI``/``EXEC`` at the end (nothing if an exception escapes); ``get`` sees the
buffered writes. ``incr`` and ``set_if_absent`` need the server's answer, so they run at once
even inside a transaction and are not rolled back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cloudcircuit.errors import StateError
from cloudcircuit.providers import JournalEntry
from cloudcircuit.state.codec import (
    check_ttl,
    decode_entry,
    decode_value,
    encode_entry,
    encode_value,
)

if TYPE_CHECKING:
    import redis as redis_lib

__all__ = ["DEFAULT_PREFIX", "RedisStore", "split_prefix"]

DEFAULT_PREFIX = "cloudcircuit:"

# Append a journal line and index its run (first append wins the order) in one round trip.
_APPEND_LUA = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  local n = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], n, ARGV[2])
end
return 1
"""

_MISSING = object()


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError(
            "the redis state store needs redis-py: pip install 'cloudcircuit[redis]'"
        ) from exc
    return redis


def split_prefix(url: str) -> tuple[str, str]:
    """``redis://h/0?prefix=p:&x=1`` -> (``redis://h/0?x=1``, ``p:``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    rest = []
    for name, value in query:
        if name == "prefix":
            prefix = value
        else:
            rest.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


class RedisStore:
    """:class:`~cloudcircuit.providers.StateStore` on Redis.

    Build from a URL (``RedisStore("redis://127.0.0.1:6379/0?prefix=team-a:")``) or pass an
    existing ``client``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        client: redis_lib.Redis | None = None,
        socket_timeout: float = 5.0,
    ) -> None:
        redis = _import_redis()
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        clean_url, url_prefix = split_prefix(url)
        self.prefix = url_prefix if prefix is None else prefix
        parts = urlsplit(clean_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host  # credentials never shown
        self._where = parts._replace(netloc=netloc, query="")
        try:
            self._client: Any = client or redis.Redis.from_url(
                clean_url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        except (ValueError, *self._errors) as exc:
            raise StateError(f"bad redis state URL {self._where.geturl()}: {exc}") from exc
        self._append = self._client.register_script(_APPEND_LUA)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"RedisStore({self._where.geturl()!r}, prefix={self.prefix!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _kv(self, key: str) -> str:
        return f"{self.prefix}kv:{key}"

    def _jkey(self, run_id: str) -> str:
        return f"{self.prefix}journal:{run_id}"

    @property
    def _runs_key(self) -> str:
        return f"{self.prefix}runs"

    def _fail(self, what: str, exc: BaseException) -> StateError:
        return StateError(f"redis state {self._where.geturl()}: {what} failed: {exc}")

    def _buffer(self) -> list[tuple[str, tuple[Any, ...]]] | None:
        buffer: list[tuple[str, tuple[Any, ...]]] | None = getattr(self._local, "buffer", None)
        return buffer

    def _overlay(self) -> dict[str, Any]:
        overlay: dict[str, Any] = self._local.overlay
        return overlay

    # -- StateStore -------------------------------------------------------------------------

    def get(self, key: str) -> Any | None:
        if self._buffer() is not None:
            text = self._overlay().get(key, _MISSING)
            if text is not _MISSING:
                return None if text is None else decode_value(text, where=key)
        try:
            raw = self._client.get(self._kv(key))
        except self._errors as exc:
            raise self._fail(f"get {key!r}", exc) from exc
        return None if raw is None else decode_value(raw, where=key)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        px = None if ttl is None else max(1, round(ttl * 1000))
        buffer = self._buffer()
        if buffer is not None:
            buffer.append(("set", (self._kv(key), text, px)))
            self._overlay()[key] = text
            return
        try:
            self._client.set(self._kv(key), text, px=px)
        except self._errors as exc:
            raise self._fail(f"set {key!r}", exc) from exc

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool:
        text = encode_value(value, where=key)
        ttl = check_ttl(ttl)
        px = None if ttl is None else max(1, round(ttl * 1000))
        try:
            return bool(self._client.set(self._kv(key), text, px=px, nx=True))
        except self._errors as exc:
            raise self._fail(f"set_if_absent {key!r}", exc) from exc

    def incr(self, key: str, amount: int = 1) -> int:
        try:
            return int(self._client.incrby(self._kv(key), int(amount)))
        except self._errors as exc:
            raise self._fail(f"incr {key!r}", exc) from exc

    def delete(self, key: str) -> None:
        buffer = self._buffer()
        if buffer is not None:
            buffer.append(("delete", (self._kv(key),)))
            self._overlay()[key] = None
            return
        try:
            self._client.delete(self._kv(key))
        except self._errors as exc:
            raise self._fail(f"delete {key!r}", exc) from exc

    def append_journal(self, entry: JournalEntry) -> None:
        text = encode_entry(entry)
        keys = [self._jkey(entry.run_id), self._runs_key, f"{self._runs_key}:seq"]
        buffer = self._buffer()
        if buffer is not None:
            buffer.append(("append", (keys, [text, entry.run_id])))
            return
        try:
            self._append(keys=keys, args=[text, entry.run_id])
        except self._errors as exc:
            raise self._fail(f"append to the journal of run {entry.run_id!r}", exc) from exc

    def journal(self, run_id: str) -> list[JournalEntry]:
        try:
            lines = self._client.lrange(self._jkey(run_id), 0, -1)
        except self._errors as exc:
            raise self._fail(f"read the journal of run {run_id!r}", exc) from exc
        return [decode_entry(line) for line in lines]

    def runs(self, limit: int = 20) -> list[str]:
        if limit <= 0:
            return []
        try:
            names = self._client.zrevrange(self._runs_key, 0, limit - 1)
        except self._errors as exc:
            raise self._fail("list runs", exc) from exc
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]

    def close(self) -> None:
        self._client.close()

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[RedisStore]:
        """Buffer writes and apply them atomically (MULTI/EXEC) when the block succeeds."""
        if self._buffer() is not None:  # nested: join the outer transaction
            yield self
            return
        self._local.buffer = []
        self._local.overlay = {}
        try:
            yield self
            buffered = self._local.buffer
        finally:
            self._local.buffer = None
            self._local.overlay = {}
        if not buffered:
            return
        try:
            pipe = self._client.pipeline(transaction=True)
            for op, args in buffered:
                if op == "set":
                    pipe.set(args[0], args[1], px=args[2])
                elif op == "delete":
                    pipe.delete(args[0])
                else:
                    self._append(keys=args[0], args=args[1], client=pipe)
            pipe.execute()
        except self._errors as exc:
            raise self._fail("commit a transaction", exc) from exc
