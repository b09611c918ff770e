"""SLOMiddleware on a real ASGI app (FastAPI) and the Prometheus exposition."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from prometheus_client.parser import text_string_to_metric_families

from cloudcircuit.slo import (
    BucketedStore,
    PrometheusExporter,
    SLODefinition,
    SLOMiddleware,
    SLORegistry,
    SLOTracker,
)


def _app(registry: SLORegistry, **middleware: Any) -> FastAPI:
    app = FastAPI()
    exporter = PrometheusExporter(registry)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/missing")
    async def missing() -> Response:
        return Response(status_code=404)

    @app.get("/down")
    async def down() -> Response:
        return Response(status_code=503)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = exporter.render()
        return Response(content=body, media_type=content_type)

    app.add_middleware(SLOMiddleware, registry=registry, slo_name="availability", **middleware)
    return app


async def _hit(app: FastAPI, paths: list[str]) -> list[int]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return [(await client.get(p)).status_code for p in paths]


def test_middleware_classifies_by_default() -> None:
    registry = SLORegistry()
    registry.define(SLODefinition(name="availability", target=0.9))
    statuses = asyncio.run(_hit(_app(registry), ["/ok", "/ok", "/missing", "/down", "/boom"]))
    assert statuses == [200, 200, 404, 503, 500]
    snap = registry.get("availability").snapshot()
    assert (snap.total, snap.failures) == (5, 2)


def test_middleware_custom_classifier() -> None:
    registry = SLORegistry()
    registry.define(SLODefinition(name="availability", target=0.9))
    app = _app(registry, classify=lambda status, exc: exc is None and status < 400)
    asyncio.run(_hit(app, ["/ok", "/missing"]))
    assert registry.get("availability").snapshot().failures == 1


def test_middleware_arguments_and_non_http_scopes() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    seen: list[str] = []
    with pytest.raises(ValueError, match="tracker"):
        SLOMiddleware(inner)
    with pytest.raises(ValueError, match="slo_name"):
        SLOMiddleware(inner, registry=SLORegistry())
    tracker = SLOTracker(SLODefinition(name="a", target=0.9))
    mw = SLOMiddleware(inner, tracker=tracker)

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        return None

    asyncio.run(mw({"type": "lifespan"}, receive, send))
    assert seen == ["lifespan"]
    assert tracker.snapshot().total == 0
    # an http app that never answers counts as a failure (status defaults to 500)
    asyncio.run(mw({"type": "http"}, receive, send))
    assert tracker.snapshot().failures == 1


def test_exporter_metric_names_and_values() -> None:
    registry = SLORegistry()
    registry.define(SLODefinition(name="availability", target=0.9))
    fast = SLOTracker(
        SLODefinition(name="freshness", target=0.99, burn_rate_windows=(3600,)),
        store=BucketedStore(2_592_000, resolution_seconds=60),
    )
    registry.add(fast)
    fast.record_failure()
    asyncio.run(_hit(_app(registry), ["/ok", "/down", "/ok", "/ok"]))
    body, content_type = PrometheusExporter(registry).render()
    assert content_type.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }
    av = (("slo", "availability"),)
    assert samples[("slo_target", av)] == 0.9
    assert samples[("slo_window_seconds", av)] == 2_592_000
    assert samples[("slo_total", av)] == 4
    assert samples[("slo_failures_total", av)] == 1
    assert samples[("slo_success_ratio", av)] == 0.75
    assert samples[("slo_error_budget_remaining", av)] == pytest.approx(-1.5)
    assert samples[("slo_breached", av)] == 1.0
    burn = samples[("slo_burn_rate", (("slo", "availability"), ("window_seconds", "3600")))]
    assert burn == pytest.approx(2.5)
    fr = (("slo", "freshness"), ("window_seconds", "3600"))
    assert samples[("slo_burn_rate", fr)] == pytest.approx(100.0)
    assert PrometheusExporter(registry).collector_registry is not None


def test_middleware_under_a_real_uvicorn_server() -> None:
    """Over real HTTP on a loopback port: uvicorn, FastAPI, the middleware, /metrics."""
    import socket
    import threading
    import time

    import uvicorn

    registry = SLORegistry()
    registry.define(SLODefinition(name="availability", target=0.99))
    app = _app(registry)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            codes = [client.get(p).status_code for p in ("/ok", "/down", "/boom", "/ok")]
            metrics = client.get("/metrics").text
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    assert codes == [200, 503, 500, 200]
    assert 'slo_total{slo="availability"} 4.0' in metrics
    assert 'slo_failures_total{slo="availability"} 2.0' in metrics
    snap = registry.get("availability").snapshot()
    assert (snap.total, snap.failures) == (5, 2)  # the /metrics request itself counted too
