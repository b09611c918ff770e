"""Ledger backends, chosen by URL scheme.

``sqlite:///path`` (embedded default), ``memory://``, ``redis://`` / ``rediss://`` and
``redis+cluster://`` / ``rediss+cluster://`` (extra ``redis``). Redis modules are imported only
when a Redis URL is opened, so the SQLite ledger needs nothing beyond the core.
"""

from __future__ import annotations

from cloudcircuit.errors import ConfigError
from cloudcircuit.quota.backends.base import Backend, Op, ScopeArgs

__all__ = ["Backend", "Op", "ScopeArgs", "open_backend"]


def open_backend(url: str, *, timeout: float = 0.5) -> Backend:
    """Open the ledger store named by ``url`` (answers within ``timeout`` or fails closed)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        from cloudcircuit.quota.backends.sqlite import SQLiteBackend

        return SQLiteBackend(url, timeout=timeout)
    if scheme == "memory":
        from cloudcircuit.quota.backends.memory import MemoryBackend

        return MemoryBackend()
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from cloudcircuit.quota.backends.redis import RedisBackend

        return RedisBackend(url, timeout=timeout)
    raise ConfigError(
        f"ledger url: unknown scheme {scheme!r} in {url!r}; use sqlite:///PATH, memory://, "
        "redis://HOST:PORT/DB or redis+cluster://HOST:PORT"
    )
