"""Alert sinks: a signed JSON webhook, Slack incoming webhooks and PagerDuty Events v2.

A sink formats an :class:`~cloudcircuit.alerts.payload.Alert` for its receiver and posts it
through :class:`~cloudcircuit.alerts.transport.HttpPoster` (timeouts, retries, backoff).
``send`` returns on success and raises :class:`~cloudcircuit.errors.AlertDeliveryError`
otherwise; :func:`~cloudcircuit.alerts.dispatch.dispatch` turns that into a report line.

Webhook signatures follow the usual "timestamp.body" scheme so a receiver can reject both
forged and replayed requests: ``X-Cloudcircuit-Signature: sha256=<hex of HMAC-SHA256(secret,
"<timestamp>.<body>")>`` with ``X-Cloudcircuit-Timestamp: <unix seconds>``; receivers call
:func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from cloudcircuit.alerts.payload import Alert
from cloudcircuit.alerts.transport import HttpPoster

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "PagerDutySink",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Cloudcircuit-Signature"
TIMESTAMP_HEADER = "X-Cloudcircuit-Timestamp"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

_USER_AGENT = "cloudcircuit-alerts/1"


@runtime_checkable
class Sink(Protocol):
    """Where alerts go. ``dedup_seconds`` None means "use dispatch's default";
    ``sends_resolve`` sinks also get a recovery when a scope they alerted on is healthy."""

    name: str
    min_severity: str
    dedup_seconds: float | None
    sends_resolve: bool

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 over ``timestamp.body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_seconds: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: is ``header`` the signature of ``body`` sent at ``timestamp``?

    Constant-time comparison; with ``tolerance_seconds`` (default 5 minutes) a timestamp
    further than that from ``now`` is refused, so a captured request cannot be replayed later.
    """
    if tolerance_seconds is not None:
        try:
            sent = float(timestamp)
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - sent) > tolerance_seconds:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), header.strip())


class _HttpSink:
    """Common parts: name, severity floor, dedup window and the poster."""

    sends_resolve = False
    kind = "sink"

    def __init__(
        self,
        name: str,
        *,
        min_severity: str = "warning",
        dedup_seconds: float | None = None,
        poster: HttpPoster | None = None,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self.dedup_seconds = dedup_seconds
        self.poster = poster or HttpPoster()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def _what(self) -> str:
        return f"{self.kind} sink {self.name!r}"

    def _post_json(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        all_headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        all_headers.update(headers or {})
        self.poster.post(url, body, all_headers, what=self._what)

    def close(self) -> None:
        self.poster.close()


class WebhookSink(_HttpSink):
    """POST the alert payload as JSON, signed when ``secret`` is set."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        min_severity: str = "warning",
        dedup_seconds: float | None = None,
        poster: HttpPoster | None = None,
    ) -> None:
        super().__init__(
            name, min_severity=min_severity, dedup_seconds=dedup_seconds, poster=poster
        )
        self.url = url
        self._secret = secret
        self.headers = dict(headers or {})

    def request(self, alert: Alert, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers a delivery sends (exposed for tests and debugging)."""
        body = alert.to_json()
        timestamp = str(int(time.time() if now is None else now))
        headers = dict(self.headers)
        headers[TIMESTAMP_HEADER] = timestamp
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return body, headers

    def send(self, alert: Alert) -> None:
        body, headers = self.request(alert)
        self._post_json(self.url, body, headers)


_SLACK_EMOJI = {"block": ":rotating_light:", "throttle": ":warning:", "allow": ":white_check_mark:"}


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class SlackSink(_HttpSink):
    """Slack incoming webhook: Block Kit blocks (header, fields, evidence) plus text fallback."""

    kind = "slack"

    def __init__(
        self,
        name: str,
        webhook_url: str,
        *,
        min_severity: str = "warning",
        dedup_seconds: float | None = None,
        poster: HttpPoster | None = None,
    ) -> None:
        super().__init__(
            name, min_severity=min_severity, dedup_seconds=dedup_seconds, poster=poster
        )
        self.webhook_url = webhook_url

    def message(self, alert: Alert) -> dict[str, Any]:
        """The Slack message for ``alert`` (limits: header 150 chars, 10 fields, 10 context
        elements, 2000 chars per field)."""
        payload = alert.to_payload()
        budget, anomaly, breaker = payload["budget"], payload["anomaly"], payload["breaker"]
        title = f"{alert.action.upper()}: budget {alert.budget} ({alert.environment})"
        fallback = (
            f"[{alert.severity}] cloudcircuit {alert.action} for budget {alert.budget}"
            f" ({alert.scope_text}): {alert.reason}"
        )
        fields = [
            f"*Service*\n{alert.service}",
            f"*Environment*\n{alert.environment}",
            f"*Scope*\n{alert.scope_text}",
            f"*Severity*\n{alert.severity}",
        ]
        if budget["current_spend"] is not None:
            ratio = budget["usage_ratio"]
            used = "" if ratio is None else f" ({ratio:.0%})"
            fields.append(
                f"*Spend*\n{_money(budget['current_spend'])} of "
                f"{_money(budget['budget_limit'])}{used}"
            )
        if anomaly["latest_spend"] is not None:
            fields.append(
                f"*Latest vs threshold*\n{_money(anomaly['latest_spend'])} vs "
                f"{_money(anomaly['threshold'])}"
            )
        if breaker["is_open"] is not None:
            fields.append(f"*Breaker*\n{'open' if breaker['is_open'] else 'closed'}")
        fields.append(f"*Run*\n`{alert.run_id}`")
        context = [
            {"type": "mrkdwn", "text": _clip(f"*{e.rule}*: {e.detail or _ev_text(e)}", 2000)}
            for e in alert.fired[:10]
        ] or [{"type": "mrkdwn", "text": "no rule fired"}]
        return {
            "text": _clip(fallback, 3000),
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": _clip(f"{_SLACK_EMOJI[alert.action]} {title}", 150),
                        "emoji": True,
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _clip(alert.reason, 3000)},
                    "fields": [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields[:10]],
                },
                {"type": "context", "elements": context},
            ],
        }

    def send(self, alert: Alert) -> None:
        body = json.dumps(self.message(alert), separators=(",", ":")).encode()
        self._post_json(self.webhook_url, body)


def _ev_text(ev: Any) -> str:
    return f"{ev.observed:g} vs {ev.threshold:g}"


_PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


class PagerDutySink(_HttpSink):
    """PagerDuty Events API v2: trigger on throttle/block, resolve when the scope recovers.

    ``dedup_key`` is stable per budget and scope, so an escalation updates the open incident
    and a later recovery resolves it.
    """

    kind = "pagerduty"
    sends_resolve = True

    def __init__(
        self,
        name: str,
        routing_key: str,
        *,
        url: str = PAGERDUTY_EVENTS_URL,
        min_severity: str = "warning",
        dedup_seconds: float | None = None,
        poster: HttpPoster | None = None,
    ) -> None:
        super().__init__(
            name, min_severity=min_severity, dedup_seconds=dedup_seconds, poster=poster
        )
        self._routing_key = routing_key
        self.url = url

    @staticmethod
    def dedup_key(alert: Alert) -> str:
        return f"cloudcircuit/{alert.budget}/{alert.fingerprint}"

    def event(self, alert: Alert) -> dict[str, Any]:
        """The Events v2 body for ``alert`` (resolve for an ``allow`` alert)."""
        if alert.action == "allow":
            return {
                "routing_key": self._routing_key,
                "event_action": "resolve",
                "dedup_key": self.dedup_key(alert),
            }
        summary = (
            f"cloudcircuit {alert.action}: budget {alert.budget} ({alert.scope_text}) "
            f"- {alert.reason}"
        )
        return {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": self.dedup_key(alert),
            "payload": {
                "summary": _clip(summary, 1024),
                "source": f"{alert.service}/{alert.environment}",
                "severity": _PD_SEVERITY[alert.severity],
                "timestamp": alert.timestamp.isoformat(),
                "component": alert.budget,
                "group": alert.environment,
                "class": ",".join(e.rule for e in alert.fired) or "cloudcircuit",
                "custom_details": alert.to_payload(),
            },
            "client": "cloudcircuit",
        }

    def send(self, alert: Alert) -> None:
        body = json.dumps(self.event(alert), separators=(",", ":"), allow_nan=False).encode()
        self._post_json(self.url, body)
