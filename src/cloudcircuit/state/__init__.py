"""State stores: breaker counters, cooldowns, alert de-duplication keys and the journal.

:func:`open_state` picks a backend by URL scheme (the policy's ``state:`` setting):

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: the embedded default;
- ``memory://``: process-local, for tests and quick runs;
- ``redis://host:port/db?prefix=...`` and ``rediss://...``: shared (``cloudcircuit[redis]``);
- anything else is looked up in the entry-point group ``cloudcircuit.state``, where a package
  registers ``scheme = "module:factory"`` and ``factory(url)`` returns a store (the AWS adapter
  adds ``dynamodb://TABLE`` this way).

All backends satisfy :class:`~cloudcircuit.providers.StateStore` and offer ``transaction()``
(see :func:`transaction`); the breaker helpers live in :mod:`cloudcircuit.state.breaker`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from urllib.parse import urlsplit

from cloudcircuit.errors import ConfigError
from cloudcircuit.providers import StateStore
from cloudcircuit.state.base import TransactionalStore, transaction
from cloudcircuit.state.breaker import (
    BreakerState,
    breaker_evidence,
    breaker_key,
    load_breaker,
    record_scan,
    save_breaker,
)
from cloudcircuit.state.memory import MemoryStore
from cloudcircuit.state.sqlite import SQLiteStore

__all__ = [
    "BUILTIN_SCHEMES",
    "STATE_ENTRY_POINT_GROUP",
    "BreakerState",
    "MemoryStore",
    "SQLiteStore",
    "TransactionalStore",
    "available_schemes",
    "breaker_evidence",
    "breaker_key",
    "load_breaker",
    "open_state",
    "record_scan",
    "save_breaker",
    "transaction",
]

STATE_ENTRY_POINT_GROUP = "cloudcircuit.state"
BUILTIN_SCHEMES: tuple[str, ...] = ("memory", "redis", "rediss", "sqlite")


def _entry_points() -> Sequence[EntryPoint]:
    return list(entry_points(group=STATE_ENTRY_POINT_GROUP))


def available_schemes() -> list[str]:
    """Built-in schemes plus those registered under ``cloudcircuit.state``."""
    return sorted(set(BUILTIN_SCHEMES) | {ep.name for ep in _entry_points()})


def _sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ConfigError(
            [
                (
                    "state",
                    f"sqlite URL {url!r} must look like sqlite:///relative.db or sqlite:////abs.db",
                )
            ]
        )
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path:
        raise ConfigError([("state", f"sqlite URL {url!r} names no file")])
    return path


def _redis(url: str) -> StateStore:
    from cloudcircuit.state.redis import RedisStore

    return RedisStore(url)


def open_state(url: str) -> StateStore:
    """Open the state store named by ``url`` (see the module docstring for the schemes).

    An unknown scheme with no entry point is a :class:`ConfigError` naming it and the schemes
    that are known.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError([("state", "state URL is empty")])
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise ConfigError(
            [
                (
                    "state",
                    f"state URL {url!r} has no scheme (known: {', '.join(available_schemes())})",
                )
            ]
        )
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url))
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("redis", "rediss"):
        return _redis(url)
    for ep in _entry_points():
        if ep.name == scheme:
            try:
                factory: Callable[[str], StateStore] = ep.load()
            except ImportError as exc:
                raise ConfigError(
                    [("state", f"state backend {scheme!r} ({ep.value}) cannot be imported: {exc}")]
                ) from exc
            store = factory(url)
            if not isinstance(store, StateStore):
                raise ConfigError(
                    [
                        (
                            "state",
                            f"entry point {ep.value!r} for scheme {scheme!r} is not a StateStore",
                        )
                    ]
                )
            return store
    raise ConfigError(
        [
            (
                "state",
                f"unknown state scheme {scheme!r} in {url!r}; known schemes: "
                + ", ".join(available_schemes()),
            )
        ]
    )
