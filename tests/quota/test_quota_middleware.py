"""QuotaMiddleware around a real FastAPI app: reserve, commit, release, deny."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from quota_helpers import three_levels

from cloudcircuit.errors import PricingError
from cloudcircuit.quota import Ledger, QuotaMiddleware

SCOPE = {"project": "p1", "user": "u1"}


def _scope_of(scope: Any) -> dict[str, str] | None:
    headers = dict(scope.get("headers", []))
    user = headers.get(b"x-user")
    if scope["path"] == "/free" or user is None:
        return None
    return {"project": "p1", "user": user.decode()}


def _estimate(scope: Any) -> float:
    if scope["path"] == "/unpriced":
        raise PricingError("model 'mystery': no price known")
    return 2.0


def _app(ledger: Ledger) -> Any:
    app = FastAPI()

    @app.get("/work")
    async def work(request: Request) -> JSONResponse:
        held = request.scope["state"]["quota_reservation"]
        return JSONResponse({"held": held.amount}, headers={"x-actual-cost": "0.75"})

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the expensive call failed")

    @app.get("/free")
    async def free() -> dict[str, str]:
        return {"ok": "free"}

    @app.get("/unpriced")
    async def unpriced() -> dict[str, str]:
        return {"ok": "never"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"x"
                await asyncio.sleep(0.01)

        return StreamingResponse(chunks())

    return QuotaMiddleware(app, ledger, scope_of=_scope_of, estimate=_estimate)


@pytest.fixture
def ledger(tmp_path: Any) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'mw.db'}", three_levels(100.0, 10.0, 3.0))


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
    )


def _user(ledger: Ledger) -> tuple[float, float]:
    usage = ledger.usage(SCOPE)[-1]
    return usage.committed, usage.held


def test_commit_uses_the_response_header_then_the_estimate(ledger: Ledger) -> None:
    async def go() -> None:
        async with _client(_app(ledger)) as http:
            answer = await http.get("/work", headers={"x-user": "u1"})
            assert answer.json() == {"held": 2.0}
            assert _user(ledger) == (0.75, 0.0)
            await http.get("/plain", headers={"x-user": "u1"})
            assert _user(ledger) == (2.75, 0.0)
            denied = await http.get("/plain", headers={"x-user": "u1"})
            assert denied.status_code == 429
            assert denied.json()["reason"] == "limit" and denied.json()["level"] == "user"
            assert (await http.get("/free")).status_code == 200

    asyncio.run(go())
    assert _user(ledger) == (2.75, 0.0)


def test_exception_releases_the_hold(ledger: Ledger) -> None:
    async def go() -> None:
        async with _client(_app(ledger)) as http:
            answer = await http.get("/boom", headers={"x-user": "u1"})
            assert answer.status_code == 500

    asyncio.run(go())
    assert _user(ledger) == (0.0, 0.0)


def test_unpriced_request_is_denied_before_the_app(ledger: Ledger) -> None:
    async def go() -> None:
        async with _client(_app(ledger)) as http:
            answer = await http.get("/unpriced", headers={"x-user": "u1"})
            assert answer.status_code == 400
            assert answer.json()["reason"] == "unpriced"
            assert "mystery" in answer.json()["message"]

    asyncio.run(go())
    assert _user(ledger) == (0.0, 0.0)


def test_actual_callable_and_request_id_header(ledger: Ledger) -> None:
    app = QuotaMiddleware(
        _app(ledger).app,
        ledger,
        scope_of=_scope_of,
        estimate=1.0,
        actual=lambda scope, status, headers: 0.5 if status == 200 else 0.0,
    )

    async def go() -> None:
        async with _client(app) as http:
            for _ in range(3):  # the same request id three times: charged once
                await http.get("/plain", headers={"x-user": "u1", "x-request-id": "r-1"})

    asyncio.run(go())
    assert _user(ledger) == (0.5, 0.0)


def test_client_disconnect_releases_the_hold(ledger: Ledger) -> None:
    app = _app(ledger)
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and len(sent) > 3:
                gone.set()  # the client goes away mid-stream

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/stream",
            "raw_path": b"/stream",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"x-user", b"u1"), (b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)

    asyncio.run(go())
    assert not any(
        m["type"] == "http.response.body" and not m.get("more_body", False) for m in sent
    ), "the response should not have completed"
    assert _user(ledger) == (0.0, 0.0)
