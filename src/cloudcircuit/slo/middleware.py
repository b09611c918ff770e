"""SLOMiddleware: a pure ASGI middleware that records every HTTP request against an SLO.

Pure ASGI (no Starlette import), so it wraps FastAPI, Starlette or any ASGI callable. By default
a request fails when the response status is >= 500 or the app raised; ``classify`` overrides
that (it receives ``(status_code, exception_or_None)`` and returns True for success).
Non-HTTP scopes (lifespan, websocket) pass through unrecorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cloudcircuit.slo.tracker import SLORegistry, SLOTracker

__all__ = ["ASGIApp", "ClassifyFn", "SLOMiddleware", "default_classifier"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ClassifyFn = Callable[[int, BaseException | None], bool]


def default_classifier(status_code: int, exception: BaseException | None) -> bool:
    """Success unless the app raised or answered 5xx."""
    return exception is None and status_code < 500


class SLOMiddleware:
    """Record one observation per HTTP request on ``tracker`` or ``registry.get(slo_name)``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracker: SLOTracker | None = None,
        registry: SLORegistry | None = None,
        slo_name: str | None = None,
        classify: ClassifyFn = default_classifier,
    ) -> None:
        if tracker is None:
            if registry is None:
                raise ValueError("SLOMiddleware needs tracker= or registry= (with slo_name=)")
            if slo_name is None:
                raise ValueError("SLOMiddleware with registry= also needs slo_name=")
            tracker = registry.get(slo_name)
        self.app = app
        self.tracker = tracker
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an app that never starts a response has failed

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            self.tracker.record(self.classify(status, exc))
            raise
        self.tracker.record(self.classify(status, None))
