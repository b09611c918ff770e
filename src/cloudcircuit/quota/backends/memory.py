"""``memory://``: the ledger in this process (tests, single-process apps).

One lock makes every operation atomic; the state machine is the shared Python engine.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections.abc import Sequence

from cloudcircuit.quota.backends.base import Op, ScopeArgs
from cloudcircuit.quota.backends.engine import Record, apply

__all__ = ["MemoryBackend"]


class _MemoryStore:
    """Dicts behind the engine's Store protocol (the caller holds the lock)."""

    def __init__(self) -> None:
        self.requests: dict[str, tuple[Record, int]] = {}
        self.holds: list[tuple[int, str]] = []
        self.held_by_scope: dict[str, int] = {}
        self.committed: dict[tuple[str, str], dict[int, int]] = {}
        self.limits: dict[str, int] = {}
        self.calls = 0

    def get_request(self, request: str) -> Record | None:
        entry = self.requests.get(request)
        return None if entry is None else dict(entry[0])

    def put_request(self, request: str, record: Record, keep_until_ms: int) -> None:
        self.requests[request] = (dict(record), keep_until_ms)
        if record["state"] == "held":
            heapq.heappush(self.holds, (int(record["exp"]), request))

    def due_holds(self, now_ms: int, limit: int) -> list[tuple[str, Record]]:
        due: list[tuple[str, Record]] = []
        while self.holds and self.holds[0][0] <= now_ms and len(due) < limit:
            _, request = heapq.heappop(self.holds)
            entry = self.requests.get(request)
            if entry is not None and entry[0]["state"] == "held":
                due.append((request, dict(entry[0])))
        self.calls += 1
        if self.calls % 1000 == 0:
            self._forget(now_ms)
        return due

    def _forget(self, now_ms: int) -> None:
        stale = [r for r, (rec, keep) in self.requests.items() if keep < now_ms]
        for request in stale:
            if self.requests[request][0]["state"] != "held":
                del self.requests[request]

    def add_held(self, scopes: Sequence[str], delta: int) -> None:
        for scope in scopes:
            self.held_by_scope[scope] = self.held_by_scope.get(scope, 0) + delta

    def _window_sum(self, scope: ScopeArgs) -> int:
        buckets = self.committed.get((scope.key, scope.window))
        if not buckets:
            return 0
        for bucket in [b for b in buckets if b < scope.lo]:
            del buckets[bucket]
        return sum(v for b, v in buckets.items() if b <= scope.hi)

    def states(self, scopes: Sequence[ScopeArgs]) -> list[tuple[int, int, int | None]]:
        return [
            (self._window_sum(s), self.held_by_scope.get(s.key, 0), self.limits.get(s.key))
            for s in scopes
        ]

    def add_committed(self, scopes: Sequence[ScopeArgs], delta: int) -> None:
        for scope in scopes:
            buckets = self.committed.setdefault((scope.key, scope.window), {})
            buckets[scope.hi] = buckets.get(scope.hi, 0) + delta

    def set_limit(self, scope: str, limit: int | None) -> None:
        if limit is None:
            self.limits.pop(scope, None)
        else:
            self.limits[scope] = limit


class MemoryBackend:
    """In-process ledger store; every instance is its own empty ledger."""

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store = _MemoryStore()

    def execute(self, op: Op) -> list[object]:
        with self._lock:
            return apply(self._store, op)

    async def aexecute(self, op: Op) -> list[object]:
        await asyncio.sleep(0)
        return self.execute(op)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release."""
