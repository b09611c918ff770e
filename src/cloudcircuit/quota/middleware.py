"""ASGI middleware: reserve when a request starts, commit when its response completes.

For every HTTP request that ``scope_of`` maps to a quota scope, the middleware reserves the
estimate (``estimate``: a number or a callable of the ASGI scope) before the app runs. A
denial answers at once (429 over a limit, 503 when the ledger is unreachable, 400 when the
cost could not be priced) and the app is not called. When the app's response has been sent
in full, the actual cost is committed: from ``actual`` (a callable of the ASGI scope, status
and headers), else from the ``actual_header`` response header, else the estimate. If the app
raises, or the client disconnects before the response completes, the hold is released.

The commit happens when the app returns after completing its response; an app that raises
is never charged, even when an error page was sent first (Starlette's error middleware does
that). The reservation is put in ``scope["state"]["quota_reservation"]`` for the app to see.
A commit or release that fails after the response is logged on ``cloudcircuit.quota`` and
counted in the metrics (the response is already on its way), never silently dropped.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from cloudcircuit.errors import CloudCircuitError, InputError, PricingError
from cloudcircuit.quota.ledger import Ledger
from cloudcircuit.quota.results import Denial, Reservation

__all__ = ["QuotaMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("cloudcircuit.quota")
_STATUS = {"limit": 429, "ledger_unavailable": 503, "unpriced": 400, "invalid": 400}


class QuotaMiddleware:
    """Reserve / commit / release around each metered request (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        ledger: Ledger,
        *,
        scope_of: Callable[[Scope], Mapping[str, str] | None],
        estimate: float | Callable[[Scope], float],
        actual: Callable[[Scope, int, list[tuple[bytes, bytes]]], float | None] | None = None,
        actual_header: str = "x-actual-cost",
        request_id_header: str | None = "x-request-id",
        ttl: float | None = None,
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.scope_of = scope_of
        self.estimate = estimate
        self.actual = actual
        self.actual_header = actual_header.lower().encode()
        self.request_id_header = request_id_header.lower().encode() if request_id_header else None
        self.ttl = ttl

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entities = self.scope_of(scope)
        if entities is None:
            await self.app(scope, receive, send)
            return
        reservation = await self._reserve(scope, entities)
        if not reservation.allowed:
            assert reservation.denial is not None
            await self._deny(send, reservation.denial, reservation.request_id)
            return
        scope.setdefault("state", {})["quota_reservation"] = reservation
        await self._run(scope, receive, send, reservation)

    async def _reserve(self, scope: Scope, entities: Mapping[str, str]) -> Reservation:
        request_id = self._header(scope.get("headers", []), self.request_id_header)
        try:
            estimate = self.estimate(scope) if callable(self.estimate) else self.estimate
        except (PricingError, InputError) as exc:
            denial = Denial("unpriced", f"denied: the request's cost cannot be priced: {exc}")
        else:
            try:
                return await self.ledger.areserve(
                    entities, estimate, request_id=request_id, ttl=self.ttl
                )
            except InputError as exc:
                denial = Denial("invalid", f"denied: {exc}")
        observer = self.ledger.observer
        if observer is not None and hasattr(observer, "denied"):
            observer.denied(denial.reason)
        return Reservation(request_id or "", tuple(entities.items()), 0.0, False, denial=denial)

    async def _run(self, scope: Scope, receive: Receive, send: Send, held: Reservation) -> None:
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        finished = False
        disconnected = False

        async def watch_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and not finished:
                disconnected = True
            return message

        async def watch_send(message: Message) -> None:
            nonlocal status, headers, finished
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        try:
            await self.app(scope, watch_receive, watch_send)
        except BaseException:
            # an app that raised is not charged, even if an error page was already sent
            await self._release(held, "the app raised")
            raise
        if finished:
            await self._commit(scope, held, status, headers)
        else:
            why = "the client disconnected" if disconnected else "no complete response"
            await self._release(held, why)

    def _cost(self, scope: Scope, held: Reservation, status: int, headers: list[Any]) -> float:
        if self.actual is not None:
            value = self.actual(scope, status, headers)
            if value is not None:
                return value
        raw = self._header(headers, self.actual_header)
        if raw is not None:
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{self.actual_header.decode()} header: bad cost {raw!r}")
            return value
        return held.amount

    async def _commit(
        self, scope: Scope, held: Reservation, status: int, headers: list[Any]
    ) -> None:
        try:
            cost = self._cost(scope, held, status, headers)
        except (InputError, PricingError) as exc:
            log.error("request %s: %s; committing the estimate", held.request_id, exc)
            cost = held.amount
        try:
            await self.ledger.acommit(held, cost)
        except CloudCircuitError as exc:
            log.error(
                "quota commit of request %s (cost %s) failed: %s; its hold expires by its TTL",
                held.request_id,
                cost,
                exc,
            )

    async def _release(self, held: Reservation, why: str) -> None:
        if held.degraded:
            return
        try:
            await self.ledger.arelease(held)
        except CloudCircuitError as exc:
            log.error(
                "quota release of request %s (%s) failed: %s; the hold expires by its TTL",
                held.request_id,
                why,
                exc,
            )

    @staticmethod
    def _header(headers: list[tuple[bytes, bytes]], name: bytes | None) -> str | None:
        if name is None:
            return None
        for key, value in headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    @staticmethod
    async def _deny(send: Send, denial: Denial, request_id: str) -> None:
        body = json.dumps({"status": "denied", "request_id": request_id, **denial.to_dict()})
        await send(
            {
                "type": "http.response.start",
                "status": _STATUS[denial.reason],
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
