"""What a scan returns: decisions, judged scopes, plan, outcomes, problems; ``to_dict()`` is
strict JSON (non-finite numbers become null)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cloudcircuit.decision import Decision, worst_action
from cloudcircuit.guardrails import SpendAction
from cloudcircuit.providers import (
    ActionOutcome,
    SourceStats,
)
from cloudcircuit.spend import SpendSeries

if TYPE_CHECKING:
    from cloudcircuit.enforcement import Plan


__all__ = [
    "ErrorKind",
    "PendingAction",
    "ScanError",
    "ScanResult",
    "ScopeResult",
    "_jsonable",
    "_outcome_dict",
]


ErrorKind = Literal["input", "source", "incomplete", "alerts", "provider", "enforcement"]


@dataclass(frozen=True, slots=True)
class ScanError:
    """Something that went wrong without stopping the scan; ``kind`` picks the exit code."""

    kind: ErrorKind
    message: str
    budget: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "budget": self.budget,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class PendingAction:
    """A requested enforcement step that cannot run here (provider missing or unresolvable)."""

    budget: str
    decision: str
    action: str
    provider: str
    reason: str
    install: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "decision": self.decision,
            "action": self.action,
            "provider": self.provider,
            "reason": self.reason,
            "install": self.install,
        }


@dataclass(frozen=True, slots=True)
class ScopeResult:
    """One judged series: what the report draws and the decision it led to."""

    budget: str
    scope: Mapping[str, str]
    series: SpendSeries
    decision: Decision
    period: str
    period_start: datetime
    period_end: datetime
    amount: float
    period_spend: float
    #: projected period total (None when the period has no complete bucket yet)
    forecast: float | None
    #: indices of complete buckets the anomaly rule flags against their own history
    anomalies: tuple[int, ...] = ()
    warning_ratio: float = 0.9

    def to_dict(self, *, include_series: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "budget": self.budget,
            "scope": dict(self.scope),
            "action": self.decision.action,
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "amount": self.amount,
            "warning_ratio": self.warning_ratio,
            "currency": self.series.currency,
            "period_spend": self.period_spend,
            "forecast": self.forecast,
            "anomalies": [self.series.starts[i].isoformat() for i in self.anomalies],
        }
        if include_series:
            out["series"] = self.series.to_rows()
        return out


@dataclass(slots=True)
class ScanResult:
    """Everything one scan saw, decided and did. ``to_dict()`` is JSON-able."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    now: datetime
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)
    scopes: list[ScopeResult] = field(default_factory=list)
    plan: Plan | None = None
    pending: list[PendingAction] = field(default_factory=list)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    alerts: Any | None = None
    source_stats: list[SourceStats] = field(default_factory=list)
    breaker: Any | None = None
    breaker_open: bool = False
    errors: list[ScanError] = field(default_factory=list)

    @property
    def action(self) -> SpendAction:
        """The strongest decision of the scan (allow when there are none)."""
        return worst_action(d.action for d in self.decisions)

    def to_dict(self, *, include_series: bool = False) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "action": self.action,
            "decisions": [_jsonable(d.to_dict()) for d in self.decisions],
            "scopes": [_jsonable(s.to_dict(include_series=include_series)) for s in self.scopes],
            "plan": {
                **(self.plan.to_dict() if self.plan is not None else {"actions": []}),
                "not_executable": [p.to_dict() for p in self.pending],
            },
            "outcomes": [_outcome_dict(o) for o in self.outcomes],
            "alerts": _jsonable(self.alerts),
            "sources": [_jsonable(s) for s in self.source_stats],
            "breaker": {"open": self.breaker_open, **(_jsonable(self.breaker) or {})},
            "errors": [e.to_dict() for e in self.errors],
        }


# -- helpers ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, mappings and sequences -> strict JSON values (NaN -> null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _jsonable(getattr(value, name)) for name in fields}
    return str(value)


def _outcome_dict(outcome: ActionOutcome) -> dict[str, Any]:
    res = outcome.resource
    return {
        "action": outcome.action,
        "status": outcome.status,
        "provider": res.provider,
        "type": res.type,
        "id": res.id,
        "name": res.name,
        "region": res.region,
        "account": res.account,
        "before": _jsonable(outcome.before),
        "after": _jsonable(outcome.after),
        "error": outcome.error,
    }
