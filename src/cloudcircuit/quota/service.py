"""The quota ledger as an HTTP service (FastAPI on uvicorn: ``cloudcircuit serve``).

Versioned endpoints under ``/v1`` (reserve, commit, release, charge, usage, limits), ``/health``
(is the backend reachable) and ``/metrics`` (Prometheus), plus coreason-budget's ``POST /check``
and ``POST /spend``. Every endpoint but /health and /metrics needs ``Authorization: Bearer KEY``;
a key acts only on the scopes it is bound to (403 elsewhere) and only admin keys touch limits.

Status codes: 200 done; 429 denied by a limit; 503 the ledger did not answer in time (fail
closed, the body says so); 400 the cost could not be priced (denied); 422 a bad body, with the
field named in ``detail[].loc``; 404/409 a reservation that is unknown or already finished.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel

from cloudcircuit.errors import (
    BudgetExceededError,
    InputError,
    LedgerUnavailableError,
    PricingError,
    ReservationError,
)
from cloudcircuit.quota.auth import ApiKey, ApiKeyStore
from cloudcircuit.quota.compat import _over
from cloudcircuit.quota.ledger import Ledger
from cloudcircuit.quota.metrics import QuotaMetrics
from cloudcircuit.quota.model import parse_scope_path
from cloudcircuit.quota.pricing import Pricing
from cloudcircuit.quota.results import Denial, Reservation, decode_token
from cloudcircuit.quota.schemas import (
    ChargeBody,
    ChargeOut,
    CheckBody,
    CommitBody,
    CommitOut,
    DenialOut,
    ErrorOut,
    HealthOut,
    LimitBody,
    LimitOut,
    ReleaseBody,
    ReleaseOut,
    ReservationOut,
    ReserveBody,
    ScopeUsageOut,
    SpendBody,
    StatusOut,
    UsageOut,
    ValidationOut,
)

try:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
except ImportError as exc:  # pragma: no cover - the server extra is part of dev
    raise ImportError(
        "the quota service needs FastAPI: pip install 'cloudcircuit[server]'"
    ) from exc

__all__ = ["create_app"]


def _errors(*codes: int, denials: tuple[int, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: 422 the validation shape, ``denials`` a DenialOut, others ErrorOut."""

    def model(code: int) -> type[BaseModel]:
        if code == 422:
            return ValidationOut
        return DenialOut if code in denials else ErrorOut

    return {code: {"model": model(code)} for code in codes}


_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


class _HTTPError(Exception):
    """Raised inside a handler to answer with ``status`` and a JSON body."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers


def _invalid(exc: InputError, where: str = "body") -> _HTTPError:
    message = str(exc)
    match = _FIELD.match(message)
    loc: list[str | int] = [where]
    if match:
        loc.extend(match.group(1).split("."))
    return _HTTPError(422, {"detail": [{"loc": loc, "msg": message, "type": "value_error"}]})


def _denial(denial: Denial, request_id: str | None) -> _HTTPError:
    status = {"limit": 429, "ledger_unavailable": 503, "unpriced": 400, "invalid": 400}[
        denial.reason
    ]
    return _HTTPError(status, {"status": "denied", "request_id": request_id, **denial.to_dict()})


_bearer = HTTPBearer(auto_error=False, description="An API key of the quota service.")


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The API key of the request (401 when missing or unknown)."""
    keys: ApiKeyStore = request.app.state.quota_keys
    key = keys.authenticate(credentials.credentials) if credentials else None
    if key is None:
        raise _HTTPError(
            401, {"detail": "missing or unknown API key"}, {"WWW-Authenticate": "Bearer"}
        )
    return key


Caller = Annotated[ApiKey, Depends(_caller)]
ScopeQuery = Annotated[
    str,
    Query(
        max_length=1000,
        description="Scope path, e.g. project=p1/user=u1 (empty: the root scope).",
    ),
]


def create_app(
    ledger: Ledger,
    keys: ApiKeyStore,
    *,
    pricing: Pricing | None = None,
    metrics: QuotaMetrics | None = None,
    title: str = "cloudcircuit quota",
) -> FastAPI:
    """The FastAPI app over ``ledger``; ``metrics`` is attached to the ledger as its observer."""
    pricing = pricing or Pricing()
    metrics = metrics or QuotaMetrics()
    if ledger.observer is None:
        ledger.observer = metrics
    app = FastAPI(
        title=title,
        version="1",
        description=__doc__,
        responses={401: {"model": ErrorOut}},
    )
    app.state.quota_keys = keys

    @app.exception_handler(_HTTPError)
    async def _answer(request: Request, exc: _HTTPError) -> JSONResponse:
        return JSONResponse(dict(exc.body), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # loc/msg/type only: the rejected input may be NaN or Infinity, which JSON cannot carry
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    def allowed(key: ApiKey, entities: Mapping[str, str], where: str = "scope") -> None:
        try:
            chain = ledger.chain(entities)
        except InputError as exc:
            raise _invalid(exc) from None
        if not key.allows(dict(chain.entities)):
            raise _HTTPError(403, {"detail": f"key {key.name!r} may not act on {where}"})

    async def run(call: Callable[[], Awaitable[Any]], what: str) -> Any:
        try:
            return await call()
        except InputError as exc:
            raise _invalid(exc) from None
        except ReservationError as exc:
            raise _HTTPError(404 if exc.state == "unknown" else 409, {"detail": str(exc)}) from None
        except LedgerUnavailableError as exc:
            raise _HTTPError(503, {"detail": f"{what} failed, ledger unavailable: {exc}"}) from None

    def priced(model: str, input_tokens: int | None, output_tokens: int | None) -> float:
        return pricing.calculate(model, input_tokens or 0, output_tokens or 0)

    @app.post(
        "/v1/reserve",
        response_model=ReservationOut,
        responses=_errors(400, 403, 422, 429, 503, denials=(400, 429, 503)),
        summary="Hold an estimated cost on every scope of the chain",
    )
    async def reserve(body: ReserveBody, key: Caller) -> ReservationOut:
        allowed(key, body.scope)
        if body.estimate is not None:
            estimate = body.estimate
        else:
            assert body.model is not None
            try:
                estimate = priced(body.model, body.input_tokens, body.max_output_tokens)
            except PricingError as exc:
                metrics.denied("unpriced")
                raise _denial(Denial("unpriced", str(exc)), body.request_id) from None
            except InputError as exc:
                raise _invalid(exc) from None
        result: Reservation = await run(
            lambda: ledger.areserve(
                body.scope, estimate, request_id=body.request_id, ttl=body.ttl_seconds
            ),
            "reserve",
        )
        if not result.allowed:
            assert result.denial is not None
            raise _denial(result.denial, result.request_id)
        return ReservationOut(
            reservation_id=result.token,
            request_id=result.request_id,
            amount=result.amount,
            expires_at=result.expires_at,
            replayed=result.replayed,
            degraded=result.degraded,
        )

    def token_scope(key: ApiKey, token: str) -> None:
        try:
            _, entities = decode_token(token)
        except InputError as exc:
            raise _invalid(exc) from None
        allowed(key, entities, "this reservation's scope")

    @app.post(
        "/v1/commit",
        response_model=CommitOut,
        responses=_errors(400, 403, 404, 409, 422, 503, denials=(400,)),
        summary="Charge the actual cost of a reservation and give the rest back",
    )
    async def commit(body: CommitBody, key: Caller) -> CommitOut:
        token_scope(key, body.reservation_id)
        if body.actual is not None:
            actual = body.actual
        else:
            assert body.model is not None
            try:
                actual = priced(body.model, body.input_tokens, body.output_tokens)
            except PricingError as exc:
                raise _denial(Denial("unpriced", str(exc)), None) from None
            except InputError as exc:
                raise _invalid(exc) from None
        done = await run(lambda: ledger.acommit(body.reservation_id, actual), "commit")
        return CommitOut(
            request_id=done.request_id, actual=done.actual, late=done.late, replayed=done.replayed
        )

    @app.post(
        "/v1/release",
        response_model=ReleaseOut,
        responses=_errors(403, 404, 409, 422, 503),
        summary="Give a reservation's hold back without charging",
    )
    async def release(body: ReleaseBody, key: Caller) -> ReleaseOut:
        token_scope(key, body.reservation_id)
        done = await run(lambda: ledger.arelease(body.reservation_id), "release")
        return ReleaseOut(status=done.status, request_id=done.request_id, replayed=done.replayed)

    @app.post(
        "/v1/charge",
        response_model=ChargeOut,
        responses=_errors(403, 409, 422, 503),
        summary="Record spend that already happened (no reservation)",
    )
    async def charge(body: ChargeBody, key: Caller) -> ChargeOut:
        allowed(key, body.scope)
        done = await run(
            lambda: ledger.acharge(body.scope, body.amount, request_id=body.request_id), "charge"
        )
        return ChargeOut(
            request_id=done.request_id,
            amount=done.amount,
            over=list(done.over),
            replayed=done.replayed,
        )

    def scope_query(text: str) -> dict[str, str]:
        try:
            return parse_scope_path(text, ledger.hierarchy)
        except InputError as exc:
            raise _invalid(exc, "query") from None

    @app.get(
        "/v1/usage",
        response_model=UsageOut,
        responses=_errors(403, 422, 503),
        summary="Committed, held and limit of every scope of a chain",
    )
    async def usage(key: Caller, scope: ScopeQuery = "") -> UsageOut:
        entities = scope_query(scope)
        allowed(key, entities)
        found = await run(lambda: ledger.ausage(entities), "usage")
        return UsageOut(scopes=[ScopeUsageOut(**s.to_dict()) for s in found])

    @app.get(
        "/v1/limits",
        response_model=LimitOut,
        responses=_errors(403, 422, 503),
        summary="The limit in force for a scope (admin keys)",
    )
    async def get_limit(key: Caller, scope: ScopeQuery = "") -> LimitOut:
        if not key.admin:
            raise _HTTPError(403, {"detail": f"key {key.name!r} is not an admin key"})
        entities = scope_query(scope)
        found = await run(lambda: ledger.ausage(entities), "usage")
        return LimitOut(scope=found[-1].scope, limit=found[-1].limit)

    @app.put(
        "/v1/limits",
        response_model=LimitOut,
        responses=_errors(403, 422, 503),
        summary="Set (or clear) the limit of a chain's deepest scope (admin keys)",
    )
    async def put_limit(body: LimitBody, key: Caller) -> LimitOut:
        if not key.admin:
            raise _HTTPError(403, {"detail": f"key {key.name!r} is not an admin key"})
        allowed(key, body.scope)
        await run(lambda: ledger.aset_limit(body.scope, body.limit, clear=body.clear), "limit")
        found = await run(lambda: ledger.ausage(body.scope), "usage")
        return LimitOut(scope=found[-1].scope, limit=found[-1].limit)

    @app.get(
        "/health",
        response_model=HealthOut,
        responses={503: {"model": HealthOut}},
        summary="Is the ledger backend reachable (coreason-compatible)",
    )
    async def health() -> Any:
        import asyncio

        ok = await asyncio.to_thread(ledger.healthy)
        state = "connected" if ok else "unreachable"
        body = {
            "status": "healthy" if ok else "unhealthy",
            "ledger": state,
            "redis": state,
            "backend": ledger.backend.name,
        }
        return body if ok else JSONResponse(body, status_code=503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        summary="Prometheus metrics",
    )
    async def prometheus() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    if {"user", "project"} <= set(ledger.hierarchy.level_names):
        _compat_routes(app, ledger, allowed, run)
    return app


def _compat_routes(app: FastAPI, ledger: Ledger, allowed: Any, run: Any) -> None:
    """coreason-budget's POST /check and POST /spend, now authenticated and scoped."""

    def entities(user_id: str, project_id: str | None) -> dict[str, str]:
        found = {"user": user_id}
        if project_id is not None:
            found["project"] = project_id
        return found

    @app.post(
        "/check",
        response_model=StatusOut,
        responses=_errors(403, 422, 429, 503),
        summary="coreason-budget: would this estimate pass every limit?",
    )
    async def check(body: CheckBody, key: Caller) -> StatusOut:
        scope = entities(body.user_id, body.project_id)
        allowed(key, scope)
        found = await run(lambda: ledger.ausage(scope), "check")
        try:
            _over(found, body.estimated_cost)
        except BudgetExceededError as exc:
            raise _HTTPError(429, {"detail": str(exc)}) from None
        return StatusOut(status="allowed")

    @app.post(
        "/spend",
        response_model=StatusOut,
        responses=_errors(403, 422, 503),
        summary="coreason-budget: record spend on every scope",
    )
    async def spend(body: SpendBody, key: Caller) -> StatusOut:
        scope = entities(body.user_id, body.project_id)
        allowed(key, scope)
        await run(lambda: ledger.acharge(scope, body.cost), "spend")
        return StatusOut(status="recorded")
