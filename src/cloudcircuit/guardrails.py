"""Scalar guardrails: the cloudcircuit 0.3 API, pure functions with typed frozen results.

Semantics are kept exactly (see reference/API.md section 1). Two things are stricter than 0.3:
NaN and infinite inputs are rejected (0.3 let NaN slip through its ``< 0`` checks and returned
silently wrong thresholds), and every error is an :class:`~cloudcircuit.errors.InputError`,
which is a ``ValueError`` so 0.3 callers' ``except ValueError`` keeps working.

:mod:`cloudcircuit.batch` evaluates the same rules over many series at once and must agree
with these functions (property-tested).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cloudcircuit.errors import InputError

__all__ = [
    "AnomalyCheckResult",
    "BudgetCheckResult",
    "BurnRateResult",
    "CircuitBreakerDecision",
    "ForecastResult",
    "PolicyDecision",
    "Severity",
    "SpendAction",
    "check_anomaly_robust",
    "check_anomaly_spike",
    "check_budget",
    "check_burn_rate",
    "evaluate_circuit_breaker",
    "evaluate_spend_policy",
    "forecast_budget_breach",
    "make_alert_payload",
]

Severity = Literal["info", "warning", "critical"]
SpendAction = Literal["allow", "throttle", "block"]

#: consistency constant that turns a MAD into a standard deviation for normal data
MAD_TO_SIGMA = 0.6745


@dataclass(frozen=True, slots=True)
class BudgetCheckResult:
    current_spend: float
    budget_limit: float
    usage_ratio: float
    remaining_budget: float
    is_warning: bool
    is_breached: bool


@dataclass(frozen=True, slots=True)
class AnomalyCheckResult:
    latest_spend: float
    baseline_mean: float
    threshold: float
    is_spike: bool


@dataclass(frozen=True, slots=True)
class BurnRateResult:
    latest_spend: float
    average_spend: float
    burn_rate_ratio: float
    is_hot: bool


@dataclass(frozen=True, slots=True)
class ForecastResult:
    current_spend: float
    budget_limit: float
    periods_elapsed: int
    total_periods: int
    projected_total_spend: float
    projected_overrun: float
    will_breach: bool


@dataclass(frozen=True, slots=True)
class CircuitBreakerDecision:
    is_open: bool
    allow_operation: bool
    retry_after_steps: int


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    action: SpendAction
    reason: str
    severity: Severity
    budget: BudgetCheckResult
    anomaly: AnomalyCheckResult
    breaker: CircuitBreakerDecision


# -- validation helpers -------------------------------------------------------------------


def _finite(name: str, value: float) -> float:
    if type(value) is float and math.isfinite(value):  # the common case, fast
        return value
    # numbers.Real also admits numpy scalars (float32, int64), which 0.3 accepted
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    return float(value)


def _series(spend_series: Sequence[float]) -> list[float]:
    if len(spend_series) < 2:
        raise InputError("spend_series must contain at least 2 points")
    values: list[float] = []
    for i, raw in enumerate(spend_series):
        # plain finite non-negative floats skip the per-point checks (and their f-strings)
        if type(raw) is float and 0.0 <= raw < math.inf:
            values.append(raw)
            continue
        value = _finite(f"spend_series[{i}]", raw)
        if value < 0:
            raise InputError(f"spend_series values must be >= 0 (spend_series[{i}] = {value})")
        values.append(value)
    return values


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def _quantile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (rank ``p * (n - 1)``), numpy's default."""
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = math.ceil(rank)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (rank - lo) * (ordered[hi] - ordered[lo])


# -- the guardrails -----------------------------------------------------------------------


def check_budget(
    current_spend: float,
    budget_limit: float,
    warning_ratio: float = 0.9,
) -> BudgetCheckResult:
    """Compare spend with a budget: warning at ``warning_ratio`` of it, breach at 100 %."""
    spend = _finite("current_spend", current_spend)
    limit = _finite("budget_limit", budget_limit)
    ratio = _finite("warning_ratio", warning_ratio)
    if limit <= 0:
        raise InputError("budget_limit must be > 0")
    if not 0 < ratio <= 1:
        raise InputError("warning_ratio must be in (0, 1]")
    if spend < 0:
        raise InputError("current_spend must be >= 0")
    usage = spend / limit
    return BudgetCheckResult(
        current_spend=spend,
        budget_limit=limit,
        usage_ratio=usage,
        remaining_budget=limit - spend,
        is_warning=usage >= ratio,
        is_breached=spend >= limit,
    )


def check_anomaly_spike(
    spend_series: Sequence[float],
    spike_multiplier: float = 1.5,
    min_baseline: float = 0.0,
) -> AnomalyCheckResult:
    """Is the latest point above ``max(mean(history), min_baseline) * spike_multiplier``?"""
    multiplier = _finite("spike_multiplier", spike_multiplier)
    floor = _finite("min_baseline", min_baseline)
    values = _series(spend_series)
    if multiplier <= 1.0:
        raise InputError("spike_multiplier must be > 1.0")
    if floor < 0:
        raise InputError("min_baseline must be >= 0")
    history = values[:-1]
    mean = sum(history) / len(history)
    threshold = max(mean, floor) * multiplier
    latest = values[-1]
    return AnomalyCheckResult(
        latest_spend=latest, baseline_mean=mean, threshold=threshold, is_spike=latest > threshold
    )


def check_anomaly_robust(
    spend_series: Sequence[float],
    *,
    method: Literal["mad", "percentile"] = "mad",
    z_threshold: float = 3.5,
    min_mad: float = 0.0,
    percentile: float = 0.95,
    min_baseline: float = 0.0,
) -> AnomalyCheckResult:
    """Spike detection that heavy tails do not fool: median + z * MAD, or a percentile."""
    values = _series(spend_series)
    floor = _finite("min_baseline", min_baseline)
    if floor < 0:
        raise InputError("min_baseline must be >= 0")
    history = values[:-1]
    if method == "mad":
        z = _finite("z_threshold", z_threshold)
        mad_floor = _finite("min_mad", min_mad)
        if z <= 0:
            raise InputError("z_threshold must be > 0")
        if mad_floor < 0:
            raise InputError("min_mad must be >= 0")
        location = _median(history)
        mad = max(_median([abs(v - location) for v in history]), mad_floor)
        sigma = mad / MAD_TO_SIGMA if mad > 0 else 0.0
        threshold = max(location, floor) + z * sigma
    elif method == "percentile":
        p = _finite("percentile", percentile)
        if not 0.0 < p < 1.0:
            raise InputError("percentile must be in (0, 1)")
        location = _quantile(history, p)
        threshold = max(location, floor)
    else:
        raise InputError(f"method must be 'mad' or 'percentile', got {method!r}")
    latest = values[-1]
    return AnomalyCheckResult(
        latest_spend=latest,
        baseline_mean=location,
        threshold=threshold,
        is_spike=latest > threshold,
    )


def check_burn_rate(
    spend_series: Sequence[float],
    hot_multiplier: float = 1.4,
) -> BurnRateResult:
    """Latest bucket over the mean of the others; hot at ``hot_multiplier`` or more."""
    multiplier = _finite("hot_multiplier", hot_multiplier)
    values = _series(spend_series)
    if multiplier <= 1.0:
        raise InputError("hot_multiplier must be > 1.0")
    latest = values[-1]
    average = sum(values[:-1]) / (len(values) - 1)
    ratio = (math.inf if latest > 0 else 1.0) if average == 0 else latest / average
    return BurnRateResult(
        latest_spend=latest,
        average_spend=average,
        burn_rate_ratio=ratio,
        is_hot=ratio >= multiplier,
    )


def forecast_budget_breach(
    current_spend: float,
    budget_limit: float,
    periods_elapsed: int,
    total_periods: int,
) -> ForecastResult:
    """Linear projection of period-end spend: ``spend / elapsed * total``."""
    spend = _finite("current_spend", current_spend)
    limit = _finite("budget_limit", budget_limit)
    _finite("periods_elapsed", periods_elapsed)
    _finite("total_periods", total_periods)
    if spend < 0:
        raise InputError("current_spend must be >= 0")
    if limit <= 0:
        raise InputError("budget_limit must be > 0")
    if periods_elapsed <= 0:
        raise InputError("periods_elapsed must be > 0")
    if total_periods <= 0:
        raise InputError("total_periods must be > 0")
    if periods_elapsed > total_periods:
        raise InputError("periods_elapsed must be <= total_periods")
    projected = (spend / periods_elapsed) * total_periods
    return ForecastResult(
        current_spend=spend,
        budget_limit=limit,
        periods_elapsed=periods_elapsed,
        total_periods=total_periods,
        projected_total_spend=projected,
        projected_overrun=max(0.0, projected - limit),
        will_breach=projected >= limit,
    )


def evaluate_circuit_breaker(
    consecutive_failures: int,
    failure_threshold: int = 3,
    cooldown_steps_remaining: int = 0,
) -> CircuitBreakerDecision:
    """Open after ``failure_threshold`` consecutive failures, or while a cooldown runs."""
    for name, value in (
        ("consecutive_failures", consecutive_failures),
        ("failure_threshold", failure_threshold),
        ("cooldown_steps_remaining", cooldown_steps_remaining),
    ):
        real = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
        if real and not math.isfinite(value):
            raise InputError(f"{name} must be finite, got {value}")
    if consecutive_failures < 0:
        raise InputError("consecutive_failures must be >= 0")
    if failure_threshold <= 0:
        raise InputError("failure_threshold must be > 0")
    if cooldown_steps_remaining < 0:
        raise InputError("cooldown_steps_remaining must be >= 0")
    is_open = consecutive_failures >= failure_threshold or cooldown_steps_remaining > 0
    return CircuitBreakerDecision(
        is_open=is_open,
        allow_operation=not is_open,
        retry_after_steps=cooldown_steps_remaining if is_open else 0,
    )


def evaluate_spend_policy(
    budget: BudgetCheckResult,
    anomaly: AnomalyCheckResult,
    breaker: CircuitBreakerDecision,
) -> PolicyDecision:
    """block when breached or the breaker is open; throttle on warning or spike; else allow."""
    if budget.is_breached or breaker.is_open:
        return PolicyDecision(
            "block", "Budget breached or circuit breaker open", "critical", budget, anomaly, breaker
        )
    if budget.is_warning or anomaly.is_spike:
        return PolicyDecision(
            "throttle",
            "Budget warning or spend spike detected",
            "warning",
            budget,
            anomaly,
            breaker,
        )
    return PolicyDecision("allow", "All safeguards healthy", "info", budget, anomaly, breaker)


def make_alert_payload(
    policy: PolicyDecision,
    service: str,
    environment: str,
) -> dict[str, object]:
    """The 0.3 provider-agnostic alert payload (the webhook sink sends it as its body)."""
    if not service:
        raise InputError("service must be non-empty")
    if not environment:
        raise InputError("environment must be non-empty")
    budget, anomaly, breaker = policy.budget, policy.anomaly, policy.breaker
    return {
        "service": service,
        "environment": environment,
        "action": policy.action,
        "severity": policy.severity,
        "reason": policy.reason,
        "budget": {
            "current_spend": budget.current_spend,
            "budget_limit": budget.budget_limit,
            "usage_ratio": budget.usage_ratio,
            "remaining_budget": budget.remaining_budget,
        },
        "anomaly": {
            "latest_spend": anomaly.latest_spend,
            "baseline_mean": anomaly.baseline_mean,
            "threshold": anomaly.threshold,
            "is_spike": anomaly.is_spike,
        },
        "breaker": {
            "is_open": breaker.is_open,
            "allow_operation": breaker.allow_operation,
            "retry_after_steps": breaker.retry_after_steps,
        },
    }
