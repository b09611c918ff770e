"""The quota ledger: reserve, commit, release, charge and usage over a scope chain.

Each call is planned once (an :class:`~cloudcircuit.quota.backends.base.Op` plus a function
that reads the reply) and then run either synchronously or asynchronously: the two faces share
every line of logic, only the transport differs (no duplicated sync/async trees).

Request ids are remembered for ``keep_seconds`` (default 10 minutes) after a request ends (its
hold is committed, released or expired, or it was denied or charged): a retry inside that window
gets the first outcome. Longer retention costs memory on Redis at high request rates.

Fail closed: when the backend cannot answer within ``timeout``, a reservation is denied with
reason ``ledger_unavailable`` unless every scope of the chain opted in to ``fail_open`` (then
it passes, ``degraded``, holding nothing). Commits, releases and charges raise
:class:`~cloudcircuit.errors.LedgerUnavailableError` instead (the caller retries with the same
reservation or request id, which is idempotent, so nothing is charged twice or lost).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cloudcircuit.errors import InputError, LedgerUnavailableError, ReservationError
from cloudcircuit.quota.backends import Backend, Op, ScopeArgs, open_backend
from cloudcircuit.quota.backends.base import KEEP_MIN_MS, OpKind
from cloudcircuit.quota.model import (
    Chain,
    Hierarchy,
    check_request_id,
    from_units,
    to_units,
)
from cloudcircuit.quota.results import (
    Charge,
    Commit,
    Denial,
    Release,
    Reservation,
    ScopeUsage,
    decode_token,
)

__all__ = ["DEFAULT_URL", "Ledger", "LedgerObserver"]

DEFAULT_URL = "sqlite:///.cloudcircuit/quota.db"
_CHAIN_CACHE = 4096
_HOUR_MS = 3_600_000
_MIN_KEEP_ALIVE_MS = 48 * _HOUR_MS  # a scope's counters outlive its last write by 2 days
T = TypeVar("T")


class LedgerObserver(Protocol):
    """Receives one event per ledger call (metrics.QuotaMetrics implements it)."""

    def observe(self, kind: str, seconds: float, outcome: str) -> None: ...

    def committed(self, levels: tuple[str, ...], amount: float) -> None: ...


@dataclass(slots=True)
class _Call(Generic[T]):
    op: Op
    done: Callable[[list[Any]], T]
    failed: Callable[[LedgerUnavailableError], T] | None = None
    levels: tuple[str, ...] = ()


class _RequestIds:
    """Request ids for calls that bring none: 64 random bits drawn once per process, then a
    counter (a random draw per call is a system call; uuid4 costs more still). A forked
    child draws its own prefix, so no two processes hand out the same id."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


_new_request_id = _RequestIds()
os.register_at_fork(after_in_child=_new_request_id.reset)


def _slot_period(chain: Chain) -> int:
    """A span of ms (aligned on the epoch) inside which no window of ``chain`` changes bucket:
    the gcd of an hour (calendar windows change at UTC midnight) and every rolling bucket
    width. An hour at most, so the rounded-up retention floor adds at most an hour."""
    period = _HOUR_MS
    for scope in chain.scopes:
        window = scope.window
        if window.kind == "rolling":
            period = math.gcd(period, window.seconds * 1000 // window.buckets)
    return period


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Ledger:
    """A hierarchical quota ledger on one backend (see the module docstring)."""

    def __init__(
        self,
        backend: Backend | str = DEFAULT_URL,
        hierarchy: Hierarchy | None = None,
        *,
        timeout: float = 0.5,
        default_ttl: float = 60.0,
        keep_seconds: float = 600.0,
        clock: Callable[[], float] = time.time,
        observer: LedgerObserver | None = None,
    ) -> None:
        if not timeout > 0:
            raise InputError(f"timeout: must be greater than 0, got {timeout}")
        self.backend: Backend = (
            open_backend(backend, timeout=timeout) if isinstance(backend, str) else backend
        )
        self.hierarchy = hierarchy or Hierarchy()
        self.timeout = timeout
        self.default_ttl = default_ttl
        self.keep_ms = max(KEEP_MIN_MS, int(keep_seconds * 1000))
        self.clock = clock
        self.observer = observer
        self._chains: dict[tuple[tuple[str, str | None], ...], Chain] = {}
        self._spans: dict[
            tuple[tuple[str, str], ...], tuple[Chain, int, int, tuple[ScopeArgs, ...]]
        ] = {}

    @property
    def default_ttl(self) -> float:
        """Seconds a reservation holds when its call names no ``ttl``."""
        return self._default_ttl_ms / 1000

    @default_ttl.setter
    def default_ttl(self, seconds: float) -> None:
        self._default_ttl_ms = int(self._check_ttl(seconds, "default_ttl") * 1000)

    # ----------------------------------------------------------------- planning helpers
    @staticmethod
    def _check_ttl(ttl: float, field: str = "ttl") -> float:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 86_400:
            raise InputError(f"{field}: must be between 0 and 86400 seconds, got {ttl!r}")
        return float(ttl)

    def chain(self, scope: Mapping[str, str | None]) -> Chain:
        """Resolve a scope mapping (``{"project": "p1", "user": "u1"}``) into its chain.

        Resolutions are cached (bounded): a hot path resolves the same few chains again and
        again, and a chain depends only on the mapping and the (immutable) hierarchy.
        """
        try:
            key = tuple(scope.items())
            found = self._chains.get(key)
        except TypeError:  # unhashable values: let resolve() name the problem
            return self.hierarchy.resolve(scope)
        if found is None:
            found = self.hierarchy.resolve(scope)
            if len(self._chains) >= _CHAIN_CACHE:
                self._chains.clear()
            self._chains[key] = found
        return found

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _scope_args(self, chain: Chain, now_ms: int) -> tuple[ScopeArgs, ...]:
        """The chain's scope arguments at ``now_ms``, cached per chain and time slot.

        A slot is ``period`` ms long, the gcd of the chain's bucket widths (calendar windows
        change at UTC midnight, a multiple of a day since the epoch), so no bucket boundary
        falls inside a slot and the spans cannot differ within it. The retention floor is
        rounded up to the slot's end, so counters may live up to one slot longer, never less.
        """
        entry = self._spans.get(chain.entities)
        if entry is not None and entry[0] is chain and entry[2] == now_ms // entry[1]:
            return entry[3]
        period = entry[1] if entry is not None and entry[0] is chain else _slot_period(chain)
        slot = now_ms // period
        floor = (slot + 1) * period + _MIN_KEEP_ALIVE_MS  # counters outlive any hold
        spans: dict[int, tuple[int, int, int]] = {}
        scopes = []
        for scope in chain.scopes:
            window = scope.window
            span = spans.get(id(window))
            if span is None:
                lo, hi, expire = window.span(now_ms)
                span = spans[id(window)] = (lo, hi, max(expire, floor))
            limit = -1 if scope.limit is None else scope.limit
            scopes.append(ScopeArgs(scope.key, window.code, span[0], span[1], span[2], limit))
        result = tuple(scopes)
        if len(self._spans) >= _CHAIN_CACHE:
            self._spans.clear()
        self._spans[chain.entities] = (chain, period, slot, result)
        return result

    def _op(
        self,
        kind: OpKind,
        chain: Chain,
        request: str,
        now_ms: int,
        amount: int = 0,
        ttl_ms: int = 0,
    ) -> Op:
        scopes = self._scope_args(chain, now_ms)
        return Op(kind, chain.root, request, now_ms, scopes, amount, ttl_ms, self.keep_ms)

    # ------------------------------------------------------------------------- plans
    def _plan_reserve(
        self,
        scope: Mapping[str, str | None],
        estimate: float,
        request_id: str | None,
        ttl: float | None,
    ) -> _Call[Reservation]:
        chain = self.chain(scope)
        amount = to_units(estimate, "estimate")
        rid = check_request_id(request_id) if request_id is not None else _new_request_id()
        ttl_ms = self._default_ttl_ms if ttl is None else int(self._check_ttl(ttl) * 1000)
        op = self._op(
            "reserve", chain, chain.request_prefix + rid, self._now_ms(), amount, ttl_ms
        )  # fmt: skip

        def done(reply: list[Any]) -> Reservation:
            head = reply[0]  # every backend answers str states (the hot path skips _text)
            if head == "reserved":
                return Reservation(
                    rid, chain.entities, from_units(int(reply[1])), True, int(reply[2]) / 1000,
                    bool(reply[3]),
                )  # fmt: skip
            if head == "charged":
                raise ReservationError(
                    f"request id {rid!r} of {chain.leaf.key} was already used for a charge; "
                    "use a new request id to reserve",
                    state="charged",
                )
            index, limit, committed, held, asked = (int(v) for v in reply[1:6])
            refused = chain.scopes[index - 1]
            message = (
                f"quota exceeded at {refused.level} {refused.key}: committed "
                f"{from_units(committed):.6g} + held {from_units(held):.6g} + requested "
                f"{from_units(asked):.6g} > limit {from_units(limit):.6g}"
            )
            return Reservation(
                request_id=rid,
                entities=chain.entities,
                amount=from_units(asked),
                allowed=False,
                replayed=bool(int(reply[6])),
                denial=Denial(
                    reason="limit",
                    message=message,
                    scope=refused.key,
                    level=refused.level,
                    entity=refused.entity,
                    limit=from_units(limit),
                    committed=from_units(committed),
                    held=from_units(held),
                    requested=from_units(asked),
                ),
            )

        def failed(exc: LedgerUnavailableError) -> Reservation:
            if chain.fail_open:
                return Reservation(
                    request_id=rid,
                    entities=chain.entities,
                    amount=from_units(amount),
                    allowed=True,
                    degraded=True,
                )
            return Reservation(
                request_id=rid,
                entities=chain.entities,
                amount=from_units(amount),
                allowed=False,
                denial=Denial(
                    reason="ledger_unavailable",
                    message=f"denied (fail closed): {exc}",
                    requested=from_units(amount),
                ),
            )

        return _Call(op, done, failed, chain.levels)

    def _resolve_reservation(self, reservation: Reservation | str) -> tuple[str, Chain]:
        if isinstance(reservation, Reservation):
            if not reservation.allowed:
                raise ReservationError(
                    f"reservation {reservation.request_id!r} was denied: nothing to commit",
                    state="denied",
                )
            chain = self._chains.get(reservation.entities)  # as resolved by its reserve
            if chain is None:
                chain = self.chain(dict(reservation.entities))
            return reservation.request_id, chain
        request_id, entities = decode_token(reservation)
        return check_request_id(request_id), self.chain(entities)

    def _plan_commit(self, reservation: Reservation | str, actual: float | None) -> _Call[Commit]:
        rid, chain = self._resolve_reservation(reservation)
        if actual is None:
            if not isinstance(reservation, Reservation):
                raise InputError("actual: is required when committing by reservation id")
            actual = reservation.amount
        amount = to_units(actual, "actual")
        degraded = isinstance(reservation, Reservation) and reservation.degraded
        kind: OpKind = "charge" if degraded else "commit"
        op = self._op(kind, chain, chain.request_prefix + rid, self._now_ms(), amount)

        def done(reply: list[Any]) -> Commit:
            state = reply[0]
            if state == "committed":
                return Commit(rid, from_units(int(reply[1])), bool(reply[2]), bool(reply[3]))
            if state == "charged" and kind == "charge":  # a degraded hold, charged post hoc
                return Commit(rid, from_units(int(reply[1])), True, bool(int(reply[2])))
            raise ReservationError(
                f"cannot commit reservation {rid!r} of {chain.leaf.key}: it is {state}",
                state=state,
            )

        return _Call(op, done, None, chain.levels)

    def _plan_release(self, reservation: Reservation | str) -> _Call[Release]:
        rid, chain = self._resolve_reservation(reservation)
        op = self._op("release", chain, chain.request_prefix + rid, self._now_ms())

        def done(reply: list[Any]) -> Release:
            state = _text(reply[0])
            if state == "released":
                return Release(rid, "released", bool(int(reply[1])))
            if state == "expired":
                return Release(rid, "expired", False)
            raise ReservationError(
                f"cannot release reservation {rid!r} of {chain.leaf.key}: it is {state}",
                state=state,
            )

        return _Call(op, done)

    def _plan_charge(
        self, scope: Mapping[str, str | None], amount: float, request_id: str | None
    ) -> _Call[Charge]:
        chain = self.chain(scope)
        units = to_units(amount, "amount")
        rid = check_request_id(request_id) if request_id is not None else _new_request_id()
        op = self._op("charge", chain, chain.request_prefix + rid, self._now_ms(), units)

        def done(reply: list[Any]) -> Charge:
            state = _text(reply[0])
            if state != "charged":
                raise ReservationError(
                    f"request id {rid!r} of {chain.leaf.key} was already used for a "
                    f"reservation ({state}); use a new request id to charge",
                    state=state,
                )
            flags = _text(reply[3])
            over = tuple(s.key for s, f in zip(chain.scopes, flags, strict=False) if f == "1")
            return Charge(rid, from_units(int(reply[1])), over, bool(int(reply[2])))

        return _Call(op, done, None, chain.levels)

    def _plan_usage(self, scope: Mapping[str, str | None]) -> _Call[list[ScopeUsage]]:
        chain = self.chain(scope)
        op = self._op("usage", chain, "", self._now_ms())

        def done(reply: list[Any]) -> list[ScopeUsage]:
            values = [int(v) for v in reply[1:]]
            result = []
            for i, s in enumerate(chain.scopes):
                committed, held, limit = values[3 * i : 3 * i + 3]
                result.append(
                    ScopeUsage(
                        scope=s.key,
                        level=s.level,
                        entity=s.entity,
                        window=s.window.code,
                        committed=from_units(committed),
                        held=from_units(held),
                        limit=None if limit < 0 else from_units(limit),
                    )
                )
            return result

        return _Call(op, done)

    def _plan_limit(
        self, scope: Mapping[str, str | None], limit: float | None, clear: bool
    ) -> _Call[None]:
        chain = self.chain(scope)
        value = -2 if clear else (-1 if limit is None else to_units(limit, "limit"))
        leaf = chain.leaf
        lo, hi, expire = leaf.window.span(self._now_ms())
        op = Op(
            kind="limit",
            root=chain.root,
            request="",
            now_ms=self._now_ms(),
            scopes=(ScopeArgs(leaf.key, leaf.window.code, lo, hi, expire, value),),
        )
        return _Call(op, lambda reply: None)

    # ------------------------------------------------------------------------ running
    def _finish(self, call: _Call[T], start: float, reply: list[Any]) -> T:
        result = call.done(reply)
        if self.observer is not None:
            outcome = _text(reply[0])
            self.observer.observe(call.op.kind, time.perf_counter() - start, outcome)
            if isinstance(result, Commit | Charge) and not result.replayed:
                amount = result.actual if isinstance(result, Commit) else result.amount
                self.observer.committed(call.levels, amount)
        return result

    def _fail(self, call: _Call[T], start: float, exc: LedgerUnavailableError) -> T:
        if self.observer is not None:
            self.observer.observe(call.op.kind, time.perf_counter() - start, "unavailable")
        if call.failed is None:
            raise exc
        return call.failed(exc)

    def _run(self, call: _Call[T]) -> T:
        if self.observer is None:  # the hot path: no timing to take
            try:
                reply = self.backend.execute(call.op)
            except LedgerUnavailableError as exc:
                return self._fail(call, 0.0, exc)
            return call.done(reply)
        start = time.perf_counter()
        try:
            reply = self.backend.execute(call.op)
        except LedgerUnavailableError as exc:
            return self._fail(call, start, exc)
        return self._finish(call, start, reply)

    async def _arun(self, call: _Call[T]) -> T:
        start = time.perf_counter()
        try:
            reply = await self.backend.aexecute(call.op)
        except LedgerUnavailableError as exc:
            return self._fail(call, start, exc)
        return self._finish(call, start, reply)

    # --------------------------------------------------------------------- public API
    def reserve(
        self,
        scope: Mapping[str, str | None],
        estimate: float,
        *,
        request_id: str | None = None,
        ttl: float | None = None,
    ) -> Reservation:
        """Hold ``estimate`` on every scope of the chain, or say which scope refused."""
        return self._run(self._plan_reserve(scope, estimate, request_id, ttl))

    async def areserve(
        self,
        scope: Mapping[str, str | None],
        estimate: float,
        *,
        request_id: str | None = None,
        ttl: float | None = None,
    ) -> Reservation:
        """Async :meth:`reserve`."""
        return await self._arun(self._plan_reserve(scope, estimate, request_id, ttl))

    def commit(self, reservation: Reservation | str, actual: float | None = None) -> Commit:
        """Charge ``actual`` (default: the estimate) and give the hold back, at once."""
        return self._run(self._plan_commit(reservation, actual))

    async def acommit(self, reservation: Reservation | str, actual: float | None = None) -> Commit:
        """Async :meth:`commit`."""
        return await self._arun(self._plan_commit(reservation, actual))

    def release(self, reservation: Reservation | str) -> Release:
        """Give a hold back without charging (the call failed or was cancelled)."""
        return self._run(self._plan_release(reservation))

    async def arelease(self, reservation: Reservation | str) -> Release:
        """Async :meth:`release`."""
        return await self._arun(self._plan_release(reservation))

    def charge(
        self, scope: Mapping[str, str | None], amount: float, *, request_id: str | None = None
    ) -> Charge:
        """Record spend that already happened (no reservation); reports scopes left over."""
        return self._run(self._plan_charge(scope, amount, request_id))

    async def acharge(
        self, scope: Mapping[str, str | None], amount: float, *, request_id: str | None = None
    ) -> Charge:
        """Async :meth:`charge`."""
        return await self._arun(self._plan_charge(scope, amount, request_id))

    def usage(self, scope: Mapping[str, str | None]) -> list[ScopeUsage]:
        """Committed, held and limit of every scope of the chain, in one round trip."""
        return self._run(self._plan_usage(scope))

    async def ausage(self, scope: Mapping[str, str | None]) -> list[ScopeUsage]:
        """Async :meth:`usage`."""
        return await self._arun(self._plan_usage(scope))

    def set_limit(
        self, scope: Mapping[str, str | None], limit: float | None, *, clear: bool = False
    ) -> None:
        """Store a limit for the chain's deepest scope (None: unlimited; clear: use config)."""
        self._run(self._plan_limit(scope, limit, clear))

    async def aset_limit(
        self, scope: Mapping[str, str | None], limit: float | None, *, clear: bool = False
    ) -> None:
        """Async :meth:`set_limit`."""
        await self._arun(self._plan_limit(scope, limit, clear))

    def healthy(self) -> bool:
        """True when the backend answers."""
        return self.backend.ping()

    def close(self) -> None:
        self.backend.close()
