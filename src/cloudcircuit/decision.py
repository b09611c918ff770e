"""Decisions that explain themselves: the action, its severity, and the evidence behind it.

Every rule (budget, spike, robust anomaly, burn rate, forecast, multi-window burn, seasonal,
streaming, breaker) reports an :class:`Evidence`: which rule, whether it fired, the observed
value, the threshold it was compared with and, for detectors that model an expectation, the
expected value and a score. A :class:`Decision` combines the evidence of one scope into
allow / throttle / block, so an alert, a log line or the HTML report can say *why*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudcircuit.guardrails import Severity, SpendAction

__all__ = [
    "ACTION_RANK",
    "SEVERITY_FOR_ACTION",
    "Decision",
    "Evidence",
    "combine",
    "worst_action",
]

#: how strong an action is; the strongest fired rule wins
ACTION_RANK: dict[SpendAction, int] = {"allow": 0, "throttle": 1, "block": 2}
SEVERITY_FOR_ACTION: dict[SpendAction, Severity] = {
    "allow": "info",
    "throttle": "warning",
    "block": "critical",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One rule's verdict on one scope, with its numbers.

    ``action`` is what the rule asks for when it fires (a policy maps each rule to throttle or
    block); it is ignored when ``fired`` is False.
    """

    rule: str
    fired: bool
    observed: float
    threshold: float
    action: SpendAction = "throttle"
    expected: float | None = None
    score: float | None = None
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "action": self.action,
            "observed": self.observed,
            "threshold": self.threshold,
            "expected": self.expected,
            "score": self.score,
            "detail": self.detail,
            **({"data": dict(self.data)} if self.data else {}),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one scope of one budget."""

    budget: str
    scope: Mapping[str, str]
    action: SpendAction
    severity: Severity
    reason: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def fired(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.fired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "scope": dict(self.scope),
            "action": self.action,
            "severity": self.severity,
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def worst_action(actions: Iterable[SpendAction]) -> SpendAction:
    """The strongest of ``actions`` (allow when there are none)."""
    best: SpendAction = "allow"
    for action in actions:
        if ACTION_RANK[action] > ACTION_RANK[best]:
            best = action
    return best


def combine(budget: str, scope: Mapping[str, str], evidence: Sequence[Evidence]) -> Decision:
    """Decide from evidence: the strongest action among the rules that fired.

    The reason lists every fired rule with its numbers, strongest first.
    """
    fired = sorted((e for e in evidence if e.fired), key=lambda e: -ACTION_RANK[e.action])
    action = worst_action(e.action for e in fired)
    if fired:
        reason = "; ".join(
            f"{e.rule}: {e.detail}" if e.detail else f"{e.rule}: {e.observed:g} vs {e.threshold:g}"
            for e in fired
        )
    else:
        reason = "all guardrails healthy"
    return Decision(
        budget=budget,
        scope=dict(scope),
        action=action,
        severity=SEVERITY_FOR_ACTION[action],
        reason=reason,
        evidence=tuple(evidence),
    )
