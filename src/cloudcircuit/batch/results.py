"""Result and parameter types of the batch engine: the 0.3 results, one numpy array per field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from cloudcircuit.guardrails import (
    AnomalyCheckResult,
    BudgetCheckResult,
    BurnRateResult,
    CircuitBreakerDecision,
    ForecastResult,
    PolicyDecision,
    SpendAction,
)

__all__ = [
    "ACTIONS",
    "REASONS",
    "SEVERITIES",
    "AnomalyArrays",
    "BatchDetector",
    "BoolArray",
    "BreakerArrays",
    "BudgetArrays",
    "BurnRateArrays",
    "DetectorArrays",
    "FloatArray",
    "ForecastArrays",
    "GuardrailParams",
    "IntArray",
    "PolicyArrays",
    "frozen",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]
_R = TypeVar("_R")


_FIELDS: dict[type, tuple[str, ...]] = {}


def frozen(result: _R) -> _R:
    """Make every array in a result read-only: the dataclass is frozen, its arrays too."""
    cls = type(result)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cast(Any, cls)))
    for name in names:
        value = getattr(result, name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        elif hasattr(type(value), "__dataclass_fields__"):
            frozen(value)
        elif isinstance(value, dict):
            for item in value.values():
                for part in item if isinstance(item, tuple) else (item,):
                    if hasattr(type(part), "__dataclass_fields__"):
                        frozen(part)
    return result


ACTIONS: tuple[SpendAction, ...] = ("allow", "throttle", "block")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
REASONS: tuple[str, ...] = (
    "All safeguards healthy",
    "Budget warning or spend spike detected",
    "Budget breached or circuit breaker open",
)

#: CPython 3.12+ sums floats with Neumaier compensation; 3.11 adds left to right
_COMPENSATED_SUM: bool = sum([1e100, 1.0, -1e100]) == 1.0
#: rows per chunk aim at about this many float64 cells (~8 MB): cache-friendly, memory-lean
_CHUNK_CELLS = 1 << 20


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetArrays:
    """:class:`~cloudcircuit.guardrails.BudgetCheckResult` for N rows."""

    current_spend: FloatArray
    budget_limit: FloatArray
    usage_ratio: FloatArray
    remaining_budget: FloatArray
    is_warning: BoolArray
    is_breached: BoolArray

    def __len__(self) -> int:
        return len(self.current_spend)

    def row(self, i: int) -> BudgetCheckResult:
        return BudgetCheckResult(
            float(self.current_spend[i]),
            float(self.budget_limit[i]),
            float(self.usage_ratio[i]),
            float(self.remaining_budget[i]),
            bool(self.is_warning[i]),
            bool(self.is_breached[i]),
        )


@dataclass(frozen=True, slots=True)
class AnomalyArrays:
    """:class:`~cloudcircuit.guardrails.AnomalyCheckResult` for N rows (spike or robust)."""

    latest_spend: FloatArray
    baseline_mean: FloatArray
    threshold: FloatArray
    is_spike: BoolArray

    def __len__(self) -> int:
        return len(self.latest_spend)

    def row(self, i: int) -> AnomalyCheckResult:
        return AnomalyCheckResult(
            float(self.latest_spend[i]),
            float(self.baseline_mean[i]),
            float(self.threshold[i]),
            bool(self.is_spike[i]),
        )


@dataclass(frozen=True, slots=True)
class BurnRateArrays:
    """:class:`~cloudcircuit.guardrails.BurnRateResult` for N rows."""

    latest_spend: FloatArray
    average_spend: FloatArray
    burn_rate_ratio: FloatArray
    is_hot: BoolArray

    def __len__(self) -> int:
        return len(self.latest_spend)

    def row(self, i: int) -> BurnRateResult:
        return BurnRateResult(
            float(self.latest_spend[i]),
            float(self.average_spend[i]),
            float(self.burn_rate_ratio[i]),
            bool(self.is_hot[i]),
        )


@dataclass(frozen=True, slots=True)
class ForecastArrays:
    """:class:`~cloudcircuit.guardrails.ForecastResult` for N rows."""

    current_spend: FloatArray
    budget_limit: FloatArray
    periods_elapsed: npt.NDArray[Any]
    total_periods: npt.NDArray[Any]
    projected_total_spend: FloatArray
    projected_overrun: FloatArray
    will_breach: BoolArray

    def __len__(self) -> int:
        return len(self.current_spend)

    def row(self, i: int) -> ForecastResult:
        return ForecastResult(
            float(self.current_spend[i]),
            float(self.budget_limit[i]),
            self.periods_elapsed[i].item(),
            self.total_periods[i].item(),
            float(self.projected_total_spend[i]),
            float(self.projected_overrun[i]),
            bool(self.will_breach[i]),
        )


@dataclass(frozen=True, slots=True)
class BreakerArrays:
    """:class:`~cloudcircuit.guardrails.CircuitBreakerDecision` for N rows."""

    is_open: BoolArray
    allow_operation: BoolArray
    retry_after_steps: IntArray

    def __len__(self) -> int:
        return len(self.is_open)

    def row(self, i: int) -> CircuitBreakerDecision:
        return CircuitBreakerDecision(
            bool(self.is_open[i]), bool(self.allow_operation[i]), int(self.retry_after_steps[i])
        )


@dataclass(frozen=True, slots=True)
class PolicyArrays:
    """:class:`~cloudcircuit.guardrails.PolicyDecision` for N rows.

    ``action``, ``reason`` and ``severity`` are object arrays pointing at three shared strings
    (8 bytes a row); ``code`` (0 allow, 1 throttle, 2 block) is the same verdict as int8 for
    vectorized use.
    """

    action: ObjArray
    reason: ObjArray
    severity: ObjArray
    budget: BudgetArrays
    anomaly: AnomalyArrays
    breaker: BreakerArrays
    code: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.code)

    def row(self, i: int) -> PolicyDecision:
        code = int(self.code[i])
        return PolicyDecision(
            ACTIONS[code],
            REASONS[code],
            cast(Any, SEVERITIES[code]),
            self.budget.row(i),
            self.anomaly.row(i),
            self.breaker.row(i),
        )


@dataclass(frozen=True, slots=True)
class DetectorArrays:
    """What an extra (vectorized) detector reports for N rows; ``threshold`` may be NaN."""

    fired: BoolArray
    observed: FloatArray
    threshold: FloatArray
    expected: FloatArray
    score: FloatArray


class BatchDetector(Protocol):
    """An extra rule for :func:`evaluate`: ``(values, lengths) -> DetectorArrays`` per chunk.

    ``values`` is a float64 chunk ``(n, T)``; ``lengths`` its valid prefix lengths. The
    returned object needs ``fired``, ``observed``, ``expected`` and ``score`` arrays of length
    n (``threshold`` optional). ``name`` becomes the evidence rule name.
    """

    name: str

    def __call__(self, values: FloatArray, lengths: IntArray) -> Any: ...


@dataclass(frozen=True, slots=True)
class GuardrailParams:
    """Settings of every rule :func:`evaluate` runs (the defaults are the 0.3 defaults).

    ``*_action`` is what a rule asks for when it fires (the policy file maps each detector to
    throttle or block); disabled rules are still computed but leave no evidence.
    ``policy_anomaly`` picks which anomaly result feeds the 0.3 policy (spike, as in 0.3).
    """

    warning_ratio: float = 0.9
    spike_multiplier: float = 1.5
    min_baseline: float = 0.0
    robust_method: Literal["mad", "percentile"] = "mad"
    z_threshold: float = 3.5
    min_mad: float = 0.0
    percentile: float = 0.95
    robust_min_baseline: float = 0.0
    hot_multiplier: float = 1.4
    failure_threshold: int = 3
    spike_enabled: bool = True
    robust_enabled: bool = True
    burn_rate_enabled: bool = True
    forecast_enabled: bool = True
    spike_action: SpendAction = "throttle"
    robust_action: SpendAction = "throttle"
    burn_rate_action: SpendAction = "throttle"
    forecast_action: SpendAction = "throttle"
    policy_anomaly: Literal["spike", "robust"] = "spike"

    @classmethod
    def from_settings(
        cls, detectors: Any, *, warning_ratio: float = 0.9, failure_threshold: int = 3
    ) -> GuardrailParams:
        """Params from a policy's ``DetectorSettings`` (read by attribute, so any object with
        ``spike``, ``robust``, ``burn_rate`` and ``forecast`` sections works).

        The batch forecast is the 0.3 linear one; ``forecast.method`` and ``breach_ratio`` are
        the scan's business. ``policy_anomaly`` is robust only when spike is disabled.
        """
        spike, robust = detectors.spike, detectors.robust
        burn, forecast = detectors.burn_rate, detectors.forecast
        return cls(
            warning_ratio=warning_ratio,
            spike_multiplier=spike.multiplier,
            min_baseline=spike.min_baseline,
            robust_method=robust.method,
            z_threshold=robust.z_threshold,
            min_mad=robust.min_mad,
            percentile=robust.percentile,
            robust_min_baseline=robust.min_baseline,
            hot_multiplier=burn.hot_multiplier,
            failure_threshold=failure_threshold,
            spike_enabled=spike.enabled,
            robust_enabled=robust.enabled,
            burn_rate_enabled=burn.enabled,
            forecast_enabled=forecast.enabled,
            spike_action=spike.action,
            robust_action=robust.action,
            burn_rate_action=burn.action,
            forecast_action=forecast.action,
            policy_anomaly="robust" if robust.enabled and not spike.enabled else "spike",
        )
