"""An alert: one decision of one scan, with the cloudcircuit 0.3 payload and its evidence.

The payload keeps every key of :func:`cloudcircuit.guardrails.make_alert_payload` (service,
environment, action, severity, reason, budget{...}, anomaly{...}, breaker{...}), so 0.3
receivers keep working, and adds run_id, budget_name, scope, evidence and timestamp. The 0.3
sections are filled from the decision's evidence: where a rule did not run the fields are
``null``, never made-up numbers. Non-finite numbers (an infinite burn ratio) become ``null``
too, because JSON has no infinity; the evidence detail still says what happened.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cloudcircuit.decision import Decision, Evidence
from cloudcircuit.errors import InputError
from cloudcircuit.guardrails import Severity, SpendAction

__all__ = [
    "ANOMALY_RULES",
    "SEVERITY_RANK",
    "Alert",
    "jsonable",
    "scope_fingerprint",
]

#: rules whose evidence fills the 0.3 ``anomaly`` section, first found wins (the 0.3 spike
#: check, then the robust one); other detectors appear in ``evidence`` only
ANOMALY_RULES: tuple[str, ...] = ("spike", "robust")
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite floats -> None, numpy scalars -> Python,
    datetimes -> ISO 8601, tuples -> lists, anything else unknown -> its ``str``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):  # numpy scalar
        return jsonable(item())
    return str(value)


def scope_fingerprint(budget: str, scope: Mapping[str, str]) -> str:
    """Stable short id of (budget, scope), independent of the scope's key order."""
    text = json.dumps([budget, sorted(scope.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _find(evidence: tuple[Evidence, ...], rules: tuple[str, ...]) -> Evidence | None:
    for rule in rules:
        for ev in evidence:
            if ev.rule == rule:
                return ev
    return None


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _budget_section(ev: Evidence | None) -> dict[str, Any]:
    """From ``budget`` evidence: ``observed`` is the spend; the limit comes from ``data``
    (``budget_limit``, or spend + ``remaining``/``remaining_budget``, or spend / ratio), never
    from ``threshold``, which is the warning level until the budget is breached."""
    if ev is None:
        return {
            "current_spend": None,
            "budget_limit": None,
            "usage_ratio": None,
            "remaining_budget": None,
        }
    data = ev.data
    spend = _num(data.get("current_spend", ev.observed))
    ratio = _num(data.get("usage_ratio", ev.score))
    remaining = _num(data.get("remaining_budget", data.get("remaining")))
    limit = _num(data.get("budget_limit", data.get("limit")))
    if limit is None and spend is not None and remaining is not None:
        limit = spend + remaining
    if limit is None and spend is not None and ratio:
        limit = spend / ratio
    if ratio is None and spend is not None and limit:
        ratio = spend / limit
    if remaining is None and spend is not None and limit is not None:
        remaining = limit - spend
    return {
        "current_spend": spend,
        "budget_limit": limit,
        "usage_ratio": ratio,
        "remaining_budget": remaining,
    }


def _anomaly_section(ev: Evidence | None) -> dict[str, Any]:
    if ev is None:
        return {"latest_spend": None, "baseline_mean": None, "threshold": None, "is_spike": None}
    data = ev.data
    is_spike = data.get("is_spike", ev.fired)
    baseline = data.get("baseline_mean", data.get("baseline", ev.expected))
    return {
        "latest_spend": _num(data.get("latest_spend", ev.observed)),
        "baseline_mean": _num(baseline),
        "threshold": _num(data.get("threshold", ev.threshold)),
        "is_spike": bool(is_spike),
    }


def _breaker_section(ev: Evidence | None) -> dict[str, Any]:
    if ev is None:
        return {"is_open": None, "allow_operation": None, "retry_after_steps": None}
    data = ev.data
    is_open = bool(data.get("is_open", ev.fired))
    retry = data.get("retry_after_steps")
    return {
        "is_open": is_open,
        "allow_operation": bool(data.get("allow_operation", not is_open)),
        "retry_after_steps": int(retry) if isinstance(retry, int | float) else None,
    }


@dataclass(frozen=True, slots=True)
class Alert:
    """What the sinks deliver. Build it with :meth:`from_decision`."""

    service: str
    environment: str
    run_id: str
    budget: str
    scope: Mapping[str, str]
    action: SpendAction
    severity: Severity
    reason: str
    evidence: tuple[Evidence, ...] = ()
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        service: str,
        environment: str,
        run_id: str,
        now: datetime | None = None,
    ) -> Alert:
        """The alert for ``decision`` of scan ``run_id``; ``service`` and ``environment``
        name what the 0.3 payload calls them (non-empty, as in 0.3)."""
        if not service:
            raise InputError("service must be non-empty")
        if not environment:
            raise InputError("environment must be non-empty")
        if not run_id:
            raise InputError("run_id must be non-empty")
        at = now or datetime.now(UTC)
        if at.tzinfo is None:
            raise InputError("alert timestamp must be timezone-aware")
        return cls(
            service=service,
            environment=environment,
            run_id=run_id,
            budget=decision.budget,
            scope=dict(decision.scope),
            action=decision.action,
            severity=decision.severity,
            reason=decision.reason,
            evidence=tuple(decision.evidence),
            timestamp=at.astimezone(UTC),
        )

    @property
    def fingerprint(self) -> str:
        """Stable id of (budget, scope): the same scope keeps it across scans and actions."""
        return scope_fingerprint(self.budget, self.scope)

    @property
    def scope_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.scope.items())) or "all"

    @property
    def fired(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.fired)

    def to_payload(self) -> dict[str, Any]:
        """The 0.3 payload keys plus run_id, budget_name, scope, evidence and timestamp."""
        payload: dict[str, Any] = {
            "service": self.service,
            "environment": self.environment,
            "action": self.action,
            "severity": self.severity,
            "reason": self.reason,
            "budget": _budget_section(_find(self.evidence, ("budget",))),
            "anomaly": _anomaly_section(_find(self.evidence, ANOMALY_RULES)),
            "breaker": _breaker_section(_find(self.evidence, ("breaker",))),
            "run_id": self.run_id,
            "budget_name": self.budget,
            "scope": dict(self.scope),
            "evidence": [e.to_dict() for e in self.evidence],
            "timestamp": self.timestamp.isoformat(),
        }
        result: dict[str, Any] = jsonable(payload)
        return result

    def to_json(self) -> bytes:
        """Compact, key-sorted strict JSON (what the webhook sink signs and sends)."""
        return json.dumps(
            self.to_payload(), separators=(",", ":"), sort_keys=True, allow_nan=False
        ).encode()
