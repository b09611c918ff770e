"""The contract between the ledger and its storage backends.

The ledger turns every call into one :class:`Op` (what to do, on which scopes, at what time)
and hands it to a backend, which carries it out *atomically in one round trip*: one Lua script
run with EVALSHA on Redis, one ``BEGIN IMMEDIATE`` transaction on SQLite, one lock hold in
memory. The backend answers with a flat reply list whose shape is the same for every backend:

========  ================================================================================
reserve   ``["reserved", amount, expires_ms, replayed]`` or
          ``["denied", scope_index (1-based), limit, committed, held, amount, replayed]``
commit    ``["committed", actual, late, replayed]`` or ``[state]`` when the request is
          ``unknown``, ``released``, ``denied`` or ``charged`` (nothing changes)
release   ``["released", replayed]`` or ``[state]`` (``unknown``, ``expired``,
          ``committed``, ``denied``, ``charged``)
charge    ``["charged", amount, replayed, over]`` (``over``: one "0"/"1" per scope)
usage     ``["usage", committed_1, held_1, limit_1, committed_2, ...]`` (limit -1: none)
limit     ``["ok"]``
========  ================================================================================

States are ``str`` (never bytes) and numbers ``int``; all amounts are integer micro-units.
A limit of -1 means unlimited. Backends raise
:class:`~cloudcircuit.errors.LedgerUnavailableError` when they cannot answer in time.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

__all__ = ["KEEP_MIN_MS", "PURGE_BATCH", "Backend", "Op", "OpKind", "ScopeArgs"]

OpKind = Literal["reserve", "commit", "release", "charge", "usage", "limit"]

PURGE_BATCH = 100
"""Expired holds given back per operation (each operation purges what is due)."""

KEEP_MIN_MS = 60_000
"""Shortest retention of a request's outcome (idempotency record) after its hold ends."""


class ScopeArgs(NamedTuple):
    """One scope of an operation: storage key, window code and bucket span, limit.

    Named tuples (not dataclasses) because one is built per scope per call on the hot path.
    """

    key: str
    window: str
    lo: int
    hi: int
    expire_ms: int
    limit: int


class Op(NamedTuple):
    """One atomic ledger operation over every scope of a chain.

    ``request`` is the idempotency key (leaf scope key + "|" + request id; empty for usage
    and limit). ``now_ms`` comes from the ledger's clock so every backend agrees on time.
    """

    kind: OpKind
    root: str
    request: str
    now_ms: int
    scopes: tuple[ScopeArgs, ...]
    amount: int = 0
    ttl_ms: int = 0
    keep_ms: int = KEEP_MIN_MS


class Backend(Protocol):
    """A ledger store: executes one :class:`Op` atomically, in one round trip."""

    name: str

    def execute(self, op: Op) -> list[object]:
        """Run ``op`` and return its reply (see the module docstring)."""
        ...

    async def aexecute(self, op: Op) -> list[object]:
        """Async twin of :meth:`execute` (same op, same reply)."""
        ...

    def ping(self) -> bool:
        """True when the store answers in time."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
