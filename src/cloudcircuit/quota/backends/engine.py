"""Ledger semantics in Python, over a tiny storage interface (used by SQLite and memory).

This is the same state machine as the Lua scripts of the Redis backend (the shared contract
test suite holds them to identical behaviour). A request (its idempotency record) moves
``held -> committed | released | expired``, or is ``denied`` / ``charged`` at once; a replay
of a request id returns its first outcome and changes nothing. The caller must run
:func:`apply` inside one transaction (SQLite) or one lock hold (memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cloudcircuit.quota.backends.base import PURGE_BATCH, Op, ScopeArgs

__all__ = ["Record", "Store", "apply"]

Record = dict[str, str]
"""An idempotency record: state, amount, exp, scopes (newline-joined), and outcome fields."""


class Store(Protocol):
    """Storage primitives; each call is part of the caller's transaction."""

    def get_request(self, request: str) -> Record | None: ...

    def put_request(self, request: str, record: Record, keep_until_ms: int) -> None: ...

    def due_holds(self, now_ms: int, limit: int) -> list[tuple[str, Record]]:
        """Requests in state ``held`` whose expiry is at or before ``now_ms``."""
        ...

    def add_held(self, scopes: Sequence[str], delta: int) -> None:
        """Add ``delta`` to the held amount of each scope."""
        ...

    def states(self, scopes: Sequence[ScopeArgs]) -> list[tuple[int, int, int | None]]:
        """(committed over buckets lo..hi, held, stored limit or None) of each scope."""
        ...

    def add_committed(self, scopes: Sequence[ScopeArgs], delta: int) -> None:
        """Add to bucket ``hi`` of each scope's window (older buckets may be dropped)."""
        ...

    def set_limit(self, scope: str, limit: int | None) -> None: ...


def _purge(store: Store, now_ms: int) -> bool:
    """Give back the holds of reservations whose TTL has passed."""
    due = store.due_holds(now_ms, PURGE_BATCH)
    for request, record in due:
        store.add_held(record["scopes"].split("\n"), -int(record["amount"]))
        store.put_request(request, {**record, "state": "expired"}, int(record["keep"]))
    return bool(due)


def _states(store: Store, op: Op) -> list[tuple[int, int, int]]:
    """(committed, held, limit in force) per scope: a stored limit wins over the configured."""
    return [
        (committed, held, scope.limit if stored is None else stored)
        for scope, (committed, held, stored) in zip(op.scopes, store.states(op.scopes), strict=True)
    ]


def _reserve(store: Store, op: Op) -> list[object]:
    previous = store.get_request(op.request)
    if previous is not None:
        if previous["state"] == "charged":  # the id belongs to a charge, not a reservation
            return ["charged"]
        if previous["state"] == "denied":
            return [
                "denied",
                int(previous["idx"]),
                int(previous["limit"]),
                int(previous["committed"]),
                int(previous["held"]),
                int(previous["amount"]),
                1,
            ]
        return ["reserved", int(previous["amount"]), int(previous["exp"]), 1]
    _purge(store, op.now_ms)
    for index, (committed, held, limit) in enumerate(_states(store, op), start=1):
        if limit >= 0 and committed + held + op.amount > limit:
            keep = op.now_ms + op.keep_ms
            store.put_request(
                op.request,
                {
                    "state": "denied",
                    "idx": str(index),
                    "limit": str(limit),
                    "committed": str(committed),
                    "held": str(held),
                    "amount": str(op.amount),
                    "keep": str(keep),
                },
                keep,
            )
            return ["denied", index, limit, committed, held, op.amount, 0]
    store.add_held([scope.key for scope in op.scopes], op.amount)
    expires = op.now_ms + op.ttl_ms
    keep = expires + op.keep_ms
    store.put_request(
        op.request,
        {
            "state": "held",
            "amount": str(op.amount),
            "exp": str(expires),
            "scopes": "\n".join(scope.key for scope in op.scopes),
            "keep": str(keep),
        },
        keep,
    )
    return ["reserved", op.amount, expires, 0]


def _commit(store: Store, op: Op) -> list[object]:
    record = store.get_request(op.request)
    if record is None:
        return ["unknown"]
    state = record["state"]
    if state == "committed":
        return ["committed", int(record["actual"]), int(record["late"]), 1]
    if state not in ("held", "expired"):
        return [state]
    if _purge(store, op.now_ms):
        record = store.get_request(op.request) or record
    late = 1
    if record["state"] == "held":
        store.add_held(record["scopes"].split("\n"), -int(record["amount"]))
        late = 1 if int(record["exp"]) <= op.now_ms else 0
    if op.amount > 0:
        store.add_committed(op.scopes, op.amount)
    keep = op.now_ms + op.keep_ms
    store.put_request(
        op.request,
        {**record, "state": "committed", "actual": str(op.amount), "late": str(late)},
        keep,
    )
    return ["committed", op.amount, late, 0]


def _release(store: Store, op: Op) -> list[object]:
    record = store.get_request(op.request)
    if record is None:
        return ["unknown"]
    state = record["state"]
    if state == "released":
        return ["released", 1]
    if state != "held":
        return [state]
    store.add_held(record["scopes"].split("\n"), -int(record["amount"]))
    keep = op.now_ms + op.keep_ms
    if int(record["exp"]) <= op.now_ms:  # due but not purged yet: it expired on its own
        store.put_request(op.request, {**record, "state": "expired"}, keep)
        return ["expired"]
    store.put_request(op.request, {**record, "state": "released"}, keep)
    return ["released", 0]


def _charge(store: Store, op: Op) -> list[object]:
    previous = store.get_request(op.request)
    if previous is not None:
        if previous["state"] != "charged":
            return [previous["state"]]
        return ["charged", int(previous["amount"]), 1, previous["over"]]
    _purge(store, op.now_ms)
    if op.amount > 0:
        store.add_committed(op.scopes, op.amount)
    over = [
        "1" if limit >= 0 and committed + held > limit else "0"
        for committed, held, limit in _states(store, op)
    ]
    flags = "".join(over)
    keep = op.now_ms + op.keep_ms
    store.put_request(
        op.request,
        {"state": "charged", "amount": str(op.amount), "over": flags, "keep": str(keep)},
        keep,
    )
    return ["charged", op.amount, 0, flags]


def _usage(store: Store, op: Op) -> list[object]:
    _purge(store, op.now_ms)
    reply: list[object] = ["usage"]
    for committed, held, limit in _states(store, op):
        reply.extend([committed, held, limit])
    return reply


def _set_limit(store: Store, op: Op) -> list[object]:
    for scope in op.scopes:
        # -2 clears the stored limit (back to configuration), -1 stores "unlimited"
        store.set_limit(scope.key, None if scope.limit == -2 else scope.limit)
    return ["ok"]


_HANDLERS = {
    "reserve": _reserve,
    "commit": _commit,
    "release": _release,
    "charge": _charge,
    "usage": _usage,
    "limit": _set_limit,
}


def apply(store: Store, op: Op) -> list[object]:
    """Carry out ``op`` against ``store`` (inside the caller's transaction)."""
    return _HANDLERS[op.kind](store, op)
