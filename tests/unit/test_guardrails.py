"""The cloudcircuit 0.3 scalar API: every formula, every boundary and every validation rule.

The reference is API.md section 1 (and the 0.3 README quickstart). Numbers are checked with
exact values where the arithmetic is exact, and with ``pytest.approx`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cloudcircuit import (
    AnomalyCheckResult,
    BudgetCheckResult,
    BurnRateResult,
    CircuitBreakerDecision,
    ForecastResult,
    PolicyDecision,
    check_anomaly_robust,
    check_anomaly_spike,
    check_budget,
    check_burn_rate,
    evaluate_circuit_breaker,
    evaluate_spend_policy,
    forecast_budget_breach,
    make_alert_payload,
)
from cloudcircuit.errors import CloudCircuitError, InputError

QUICK = [120.0, 118.0, 121.0, 250.0]
NON_FINITE = [math.nan, math.inf, -math.inf]

# -- budget -------------------------------------------------------------------------------


def test_budget_formulas() -> None:
    r = check_budget(current_spend=920.0, budget_limit=1000.0, warning_ratio=0.9)
    assert r == BudgetCheckResult(920.0, 1000.0, 0.92, 80.0, True, False)


def test_budget_default_warning_ratio_is_0_9() -> None:
    assert check_budget(899.0, 1000.0).is_warning is False
    assert check_budget(900.0, 1000.0).is_warning is True


def test_budget_warning_is_inclusive_and_breach_is_inclusive() -> None:
    at_warning = check_budget(90.0, 100.0, warning_ratio=0.9)
    assert at_warning.usage_ratio == 0.9
    assert (at_warning.is_warning, at_warning.is_breached) == (True, False)
    at_limit = check_budget(100.0, 100.0)
    assert (at_limit.is_warning, at_limit.is_breached) == (True, True)
    assert at_limit.remaining_budget == 0.0
    over = check_budget(150.0, 100.0)
    assert over.remaining_budget == -50.0
    assert over.usage_ratio == 1.5


def test_budget_zero_spend_and_ratio_one_are_valid() -> None:
    r = check_budget(0.0, 10.0, warning_ratio=1.0)
    assert (r.usage_ratio, r.is_warning, r.is_breached) == (0.0, False, False)
    assert check_budget(10.0, 10.0, warning_ratio=1.0).is_warning is True


@pytest.mark.parametrize(
    ("spend", "limit", "ratio", "message"),
    [
        (1.0, 0.0, 0.9, "budget_limit must be > 0"),
        (1.0, -5.0, 0.9, "budget_limit must be > 0"),
        (1.0, 10.0, 0.0, "warning_ratio must be in (0, 1]"),
        (1.0, 10.0, -0.1, "warning_ratio must be in (0, 1]"),
        (1.0, 10.0, 1.01, "warning_ratio must be in (0, 1]"),
        (-0.01, 10.0, 0.9, "current_spend must be >= 0"),
    ],
)
def test_budget_validation(spend: float, limit: float, ratio: float, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_budget(spend, limit, ratio)
    assert str(info.value) == message


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize("position", [0, 1, 2])
def test_budget_rejects_non_finite(bad: float, position: int) -> None:
    args = [10.0, 100.0, 0.9]
    args[position] = bad
    names = ["current_spend", "budget_limit", "warning_ratio"]
    with pytest.raises(ValueError, match=f"{names[position]} must be finite"):
        check_budget(*args)


@pytest.mark.parametrize("bad", ["10", None, True, [1.0]])
def test_budget_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(InputError, match="current_spend must be a number"):
        check_budget(bad, 100.0)  # type: ignore[arg-type]


def test_numpy_scalars_are_numbers_as_in_03() -> None:
    r = check_budget(np.float32(50.0), np.int64(100))  # type: ignore[arg-type]
    assert r.usage_ratio == 0.5
    spike = check_anomaly_spike(np.array([1, 1, 1, 2], dtype=np.int64))  # type: ignore[arg-type]
    assert spike.is_spike is True
    assert check_burn_rate(np.array([1.0, 3.0], dtype=np.float32)).burn_rate_ratio == 3.0  # type: ignore[arg-type]


# -- spike --------------------------------------------------------------------------------


def test_spike_formula_uses_history_mean_times_multiplier() -> None:
    r = check_anomaly_spike([10.0, 20.0, 30.0, 61.0], spike_multiplier=3.0)
    assert r == AnomalyCheckResult(61.0, 20.0, 60.0, True)


def test_spike_is_strictly_greater_than_threshold() -> None:
    at = check_anomaly_spike([1.0, 1.0, 1.0, 1.5], spike_multiplier=1.5)
    assert at.threshold == 1.5
    assert at.is_spike is False
    above = check_anomaly_spike([1.0, 1.0, 1.0, math.nextafter(1.5, 2.0)], spike_multiplier=1.5)
    assert above.is_spike is True


def test_spike_defaults() -> None:
    r = check_anomaly_spike([2.0, 2.0, 3.0])
    assert r.threshold == 3.0  # default multiplier 1.5
    assert r.is_spike is False


def test_spike_min_baseline_floors_the_baseline_but_not_the_mean() -> None:
    r = check_anomaly_spike([0.0, 0.0, 5.0], spike_multiplier=2.0, min_baseline=3.0)
    assert r.baseline_mean == 0.0
    assert r.threshold == 6.0
    assert r.is_spike is False
    below_mean = check_anomaly_spike([10.0, 10.0, 25.0], spike_multiplier=2.0, min_baseline=3.0)
    assert below_mean.threshold == 20.0


def test_spike_two_points_and_all_zero() -> None:
    assert check_anomaly_spike([4.0, 6.1]).is_spike is True
    zeros = check_anomaly_spike([0.0, 0.0, 0.0])
    assert zeros == AnomalyCheckResult(0.0, 0.0, 0.0, False)
    assert check_anomaly_spike([0.0, 0.0, 0.001]).is_spike is True


@pytest.mark.parametrize(
    ("series", "kwargs", "message"),
    [
        ([], {}, "spend_series must contain at least 2 points"),
        ([1.0], {}, "spend_series must contain at least 2 points"),
        ([1.0, 2.0], {"spike_multiplier": 1.0}, "spike_multiplier must be > 1.0"),
        ([1.0, 2.0], {"spike_multiplier": 0.5}, "spike_multiplier must be > 1.0"),
        ([1.0, 2.0], {"min_baseline": -1.0}, "min_baseline must be >= 0"),
        ([1.0, -2.0, 3.0], {}, "spend_series values must be >= 0"),
    ],
)
def test_spike_validation(series: list[float], kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_anomaly_spike(series, **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_spike_rejects_non_finite_points_and_parameters(bad: float) -> None:
    with pytest.raises(InputError, match=r"spend_series\[1\] must be finite"):
        check_anomaly_spike([1.0, bad, 2.0])
    with pytest.raises(InputError, match="spike_multiplier must be finite"):
        check_anomaly_spike([1.0, 2.0], spike_multiplier=bad)
    with pytest.raises(InputError, match="min_baseline must be finite"):
        check_anomaly_spike([1.0, 2.0], min_baseline=bad)


def test_negative_point_message_names_the_index() -> None:
    with pytest.raises(InputError, match=r"spend_series\[2\] = -3.0"):
        check_anomaly_spike([1.0, 2.0, -3.0])


# -- robust: MAD --------------------------------------------------------------------------


def test_mad_formula() -> None:
    # history 10, 12, 13, 20, 40: median 13; |dev| 3, 1, 0, 7, 27 -> MAD 3
    r = check_anomaly_robust([12.0, 40.0, 10.0, 20.0, 13.0, 30.0], method="mad", z_threshold=2.0)
    assert r.baseline_mean == 13.0
    assert r.threshold == pytest.approx(13.0 + 2.0 * 3.0 / 0.6745, rel=1e-15)
    assert r.is_spike is True


def test_mad_even_history_averages_the_middle_values() -> None:
    # history 1, 2, 4, 10: median 3; |dev| 2, 1, 1, 7 -> MAD (1 + 2) / 2 = 1.5
    r = check_anomaly_robust([10.0, 1.0, 4.0, 2.0, 5.0], z_threshold=1.0)
    assert r.baseline_mean == 3.0
    assert r.threshold == 3.0 + 1.5 / 0.6745


def test_mad_zero_means_zero_spread() -> None:
    flat = check_anomaly_robust([5.0, 5.0, 5.0, 5.0], method="mad")
    assert flat == AnomalyCheckResult(5.0, 5.0, 5.0, False)
    assert check_anomaly_robust([5.0, 5.0, 5.0, 5.000001]).is_spike is True
    # more than half the history equal: MAD 0 although the history is not flat
    r = check_anomaly_robust([7.0, 7.0, 7.0, 100.0, 8.0])
    assert r.threshold == 7.0


def test_mad_min_mad_floors_the_spread() -> None:
    r = check_anomaly_robust([5.0, 5.0, 5.0, 11.0], min_mad=1.0, z_threshold=3.5)
    assert r.threshold == 5.0 + 3.5 * (1.0 / 0.6745)
    assert r.is_spike is True
    assert check_anomaly_robust([5.0, 5.0, 5.0, 11.0], min_mad=2.0).is_spike is False


def test_mad_min_baseline_floors_the_location() -> None:
    r = check_anomaly_robust([1.0, 1.0, 1.0, 20.0], min_baseline=10.0)
    assert r.baseline_mean == 1.0
    assert r.threshold == 10.0
    assert r.is_spike is True


def test_mad_is_strict() -> None:
    at = check_anomaly_robust([5.0, 5.0, 5.0, 5.0])
    assert at.latest_spend == at.threshold
    assert at.is_spike is False


def test_robust_defaults_are_mad_3_5() -> None:
    default = check_anomaly_robust(QUICK)
    explicit = check_anomaly_robust(
        QUICK, method="mad", z_threshold=3.5, min_mad=0.0, percentile=0.95, min_baseline=0.0
    )
    assert default == explicit


def test_robust_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        check_anomaly_robust(QUICK, "mad")  # type: ignore[misc]


# -- robust: percentile -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "p", "expected"),
    [
        ([10.0, 20.0, 30.0, 40.0], 0.5, 25.0),  # rank 1.5
        ([40.0, 10.0, 30.0, 20.0], 0.5, 25.0),  # order does not matter
        ([10.0, 20.0, 30.0, 40.0, 50.0], 0.25, 20.0),  # rank exactly 1
        ([10.0, 20.0, 30.0, 40.0, 50.0], 0.1, 14.0),  # rank 0.4
        ([7.0], 0.9, 7.0),  # a single history point
        ([1.0, 1.0, 9.0], 0.75, 5.0),  # rank 1.5 between 1 and 9
    ],
)
def test_percentile_linear_rank_interpolation(
    history: list[float], p: float, expected: float
) -> None:
    r = check_anomaly_robust([*history, 0.0], method="percentile", percentile=p)
    assert r.baseline_mean == pytest.approx(expected, rel=1e-15)
    assert r.threshold == r.baseline_mean
    assert r.is_spike is False


def test_percentile_matches_numpy_linear_quantile() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        history = rng.gamma(2.0, 30.0, size=int(rng.integers(1, 40))).tolist()
        p = float(rng.uniform(0.01, 0.99))
        r = check_anomaly_robust([*history, 1.0], method="percentile", percentile=p)
        assert r.baseline_mean == pytest.approx(float(np.quantile(history, p)), rel=1e-12)


def test_percentile_min_baseline_and_strictness() -> None:
    r = check_anomaly_robust([1.0, 2.0, 3.0, 10.0], method="percentile", min_baseline=10.0)
    assert r.threshold == 10.0
    assert r.is_spike is False
    assert check_anomaly_robust([1.0, 2.0, 3.0, 10.0], method="percentile").is_spike is True


def test_options_of_the_other_method_are_not_validated() -> None:
    # 0.3 checks z_threshold/min_mad only for mad and percentile only for percentile
    check_anomaly_robust(QUICK, method="percentile", z_threshold=-1.0, min_mad=-1.0)
    check_anomaly_robust(QUICK, method="mad", percentile=7.0)


@pytest.mark.parametrize(
    ("series", "kwargs", "message"),
    [
        ([1.0], {}, "spend_series must contain at least 2 points"),
        ([1.0, -1.0], {}, "spend_series values must be >= 0"),
        ([1.0, 2.0], {"min_baseline": -0.5}, "min_baseline must be >= 0"),
        ([1.0, 2.0], {"z_threshold": 0.0}, "z_threshold must be > 0"),
        ([1.0, 2.0], {"z_threshold": -1.0}, "z_threshold must be > 0"),
        ([1.0, 2.0], {"min_mad": -0.1}, "min_mad must be >= 0"),
        ([1.0, 2.0], {"method": "percentile", "percentile": 0.0}, "percentile must be in (0, 1)"),
        ([1.0, 2.0], {"method": "percentile", "percentile": 1.0}, "percentile must be in (0, 1)"),
        ([1.0, 2.0], {"method": "percentile", "percentile": -0.2}, "percentile must be in (0, 1)"),
        ([1.0, 2.0], {"method": "zscore"}, "method must be 'mad' or 'percentile'"),
    ],
)
def test_robust_validation(series: list[float], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_anomaly_robust(series, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_robust_rejects_non_finite(bad: float) -> None:
    with pytest.raises(InputError, match="must be finite"):
        check_anomaly_robust([1.0, bad, 2.0])
    with pytest.raises(InputError, match="z_threshold must be finite"):
        check_anomaly_robust([1.0, 2.0], z_threshold=bad)
    with pytest.raises(InputError, match="percentile must be finite"):
        check_anomaly_robust([1.0, 2.0], method="percentile", percentile=bad)


# -- burn rate ----------------------------------------------------------------------------


def test_burn_rate_formula_and_inclusive_hot() -> None:
    r = check_burn_rate([2.0, 2.0, 3.0], hot_multiplier=1.5)
    assert r == BurnRateResult(3.0, 2.0, 1.5, True)
    assert check_burn_rate([2.0, 2.0, 2.9], hot_multiplier=1.5).is_hot is False


def test_burn_rate_default_multiplier_1_4() -> None:
    assert check_burn_rate([10.0, 14.0]).is_hot is True
    assert check_burn_rate([10.0, 13.9]).is_hot is False


def test_burn_rate_zero_average() -> None:
    hot = check_burn_rate([0.0, 0.0, 0.5])
    assert hot.average_spend == 0.0
    assert hot.burn_rate_ratio == math.inf
    assert hot.is_hot is True
    idle = check_burn_rate([0.0, 0.0, 0.0])
    assert idle.burn_rate_ratio == 1.0
    assert idle.is_hot is False


@pytest.mark.parametrize(
    ("series", "kwargs", "message"),
    [
        ([3.0], {}, "spend_series must contain at least 2 points"),
        ([1.0, 2.0], {"hot_multiplier": 1.0}, "hot_multiplier must be > 1.0"),
        ([1.0, 2.0], {"hot_multiplier": 0.9}, "hot_multiplier must be > 1.0"),
        ([-1.0, 2.0], {}, "spend_series values must be >= 0"),
    ],
)
def test_burn_rate_validation(series: list[float], kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_burn_rate(series, **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_burn_rate_rejects_non_finite(bad: float) -> None:
    with pytest.raises(InputError, match="must be finite"):
        check_burn_rate([1.0, bad])
    with pytest.raises(InputError, match="hot_multiplier must be finite"):
        check_burn_rate([1.0, 2.0], hot_multiplier=bad)


# -- forecast -----------------------------------------------------------------------------


def test_forecast_formula() -> None:
    r = forecast_budget_breach(300.0, 1000.0, 10, 30)
    assert r == ForecastResult(300.0, 1000.0, 10, 30, 900.0, 0.0, False)
    over = forecast_budget_breach(400.0, 1000.0, 10, 30)
    assert (over.projected_total_spend, over.projected_overrun, over.will_breach) == (
        1200.0,
        200.0,
        True,
    )


def test_forecast_breach_is_inclusive_and_full_period_allowed() -> None:
    r = forecast_budget_breach(250.0, 1000.0, 10, 40)
    assert (r.projected_total_spend, r.projected_overrun, r.will_breach) == (1000.0, 0.0, True)
    full = forecast_budget_breach(992.0, 1000.0, 32, 32)
    assert (full.projected_total_spend, full.will_breach) == (992.0, False)
    assert forecast_budget_breach(0.0, 1.0, 1, 1).projected_total_spend == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1.0, 100.0, 1, 2), "current_spend must be >= 0"),
        ((1.0, 0.0, 1, 2), "budget_limit must be > 0"),
        ((1.0, -3.0, 1, 2), "budget_limit must be > 0"),
        ((1.0, 100.0, 0, 2), "periods_elapsed must be > 0"),
        ((1.0, 100.0, -1, 2), "periods_elapsed must be > 0"),
        ((1.0, 100.0, 1, 0), "total_periods must be > 0"),
        ((1.0, 100.0, 3, 2), "periods_elapsed must be <= total_periods"),
    ],
)
def test_forecast_validation(args: tuple[float, float, int, int], message: str) -> None:
    with pytest.raises(ValueError) as info:
        forecast_budget_breach(*args)
    assert str(info.value) == message


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_forecast_rejects_non_finite(bad: float, position: int) -> None:
    args: list[float] = [1.0, 100.0, 1, 2]
    args[position] = bad
    with pytest.raises(InputError, match="must be finite"):
        forecast_budget_breach(*args)  # type: ignore[arg-type]


# -- circuit breaker ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "threshold", "cooldown", "expected"),
    [
        (0, 3, 0, CircuitBreakerDecision(False, True, 0)),
        (2, 3, 0, CircuitBreakerDecision(False, True, 0)),
        (3, 3, 0, CircuitBreakerDecision(True, False, 0)),  # >= threshold
        (9, 3, 0, CircuitBreakerDecision(True, False, 0)),
        (0, 3, 2, CircuitBreakerDecision(True, False, 2)),  # cooldown alone opens it
        (5, 3, 4, CircuitBreakerDecision(True, False, 4)),
        (1, 1, 0, CircuitBreakerDecision(True, False, 0)),
    ],
)
def test_breaker(
    failures: int, threshold: int, cooldown: int, expected: CircuitBreakerDecision
) -> None:
    assert evaluate_circuit_breaker(failures, threshold, cooldown) == expected


def test_breaker_defaults() -> None:
    assert evaluate_circuit_breaker(2).is_open is False
    assert evaluate_circuit_breaker(3).is_open is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 3, 0), "consecutive_failures must be >= 0"),
        ((0, 0, 0), "failure_threshold must be > 0"),
        ((0, -2, 0), "failure_threshold must be > 0"),
        ((0, 3, -1), "cooldown_steps_remaining must be >= 0"),
    ],
)
def test_breaker_validation(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError) as info:
        evaluate_circuit_breaker(*args)
    assert str(info.value) == message


@pytest.mark.parametrize("position", [0, 1, 2])
def test_breaker_rejects_nan(position: int) -> None:
    args: list[float] = [0, 3, 0]
    args[position] = math.nan
    with pytest.raises(InputError, match="must be finite"):
        evaluate_circuit_breaker(*args)  # type: ignore[arg-type]


# -- policy and payload -------------------------------------------------------------------

OK_BUDGET = BudgetCheckResult(10.0, 100.0, 0.1, 90.0, False, False)
WARN_BUDGET = BudgetCheckResult(95.0, 100.0, 0.95, 5.0, True, False)
BREACHED = BudgetCheckResult(120.0, 100.0, 1.2, -20.0, True, True)
CALM = AnomalyCheckResult(10.0, 10.0, 15.0, False)
SPIKE = AnomalyCheckResult(30.0, 10.0, 15.0, True)
CLOSED = CircuitBreakerDecision(False, True, 0)
OPEN = CircuitBreakerDecision(True, False, 2)


@pytest.mark.parametrize(
    ("budget", "anomaly", "breaker", "action", "severity", "reason"),
    [
        (OK_BUDGET, CALM, CLOSED, "allow", "info", "All safeguards healthy"),
        (
            WARN_BUDGET,
            CALM,
            CLOSED,
            "throttle",
            "warning",
            "Budget warning or spend spike detected",
        ),
        (OK_BUDGET, SPIKE, CLOSED, "throttle", "warning", "Budget warning or spend spike detected"),
        (BREACHED, CALM, CLOSED, "block", "critical", "Budget breached or circuit breaker open"),
        (OK_BUDGET, CALM, OPEN, "block", "critical", "Budget breached or circuit breaker open"),
        (WARN_BUDGET, SPIKE, OPEN, "block", "critical", "Budget breached or circuit breaker open"),
    ],
)
def test_policy(
    budget: BudgetCheckResult,
    anomaly: AnomalyCheckResult,
    breaker: CircuitBreakerDecision,
    action: str,
    severity: str,
    reason: str,
) -> None:
    decision = evaluate_spend_policy(budget=budget, anomaly=anomaly, breaker=breaker)
    assert decision == PolicyDecision(action, reason, severity, budget, anomaly, breaker)  # type: ignore[arg-type]


def test_alert_payload_keys_and_values() -> None:
    decision = evaluate_spend_policy(WARN_BUDGET, SPIKE, CLOSED)
    payload = make_alert_payload(decision, service="billing-worker", environment="prod")
    assert payload == {
        "service": "billing-worker",
        "environment": "prod",
        "action": "throttle",
        "severity": "warning",
        "reason": "Budget warning or spend spike detected",
        "budget": {
            "current_spend": 95.0,
            "budget_limit": 100.0,
            "usage_ratio": 0.95,
            "remaining_budget": 5.0,
        },
        "anomaly": {
            "latest_spend": 30.0,
            "baseline_mean": 10.0,
            "threshold": 15.0,
            "is_spike": True,
        },
        "breaker": {"is_open": False, "allow_operation": True, "retry_after_steps": 0},
    }


@pytest.mark.parametrize(
    ("service", "environment", "field"), [("", "prod", "service"), ("svc", "", "environment")]
)
def test_alert_payload_needs_service_and_environment(
    service: str, environment: str, field: str
) -> None:
    decision = evaluate_spend_policy(OK_BUDGET, CALM, CLOSED)
    with pytest.raises(ValueError, match=f"{field} must be non-empty"):
        make_alert_payload(decision, service=service, environment=environment)


# -- result types and errors --------------------------------------------------------------

RESULT_FIELDS = {
    BudgetCheckResult: (
        "current_spend",
        "budget_limit",
        "usage_ratio",
        "remaining_budget",
        "is_warning",
        "is_breached",
    ),
    AnomalyCheckResult: ("latest_spend", "baseline_mean", "threshold", "is_spike"),
    BurnRateResult: ("latest_spend", "average_spend", "burn_rate_ratio", "is_hot"),
    ForecastResult: (
        "current_spend",
        "budget_limit",
        "periods_elapsed",
        "total_periods",
        "projected_total_spend",
        "projected_overrun",
        "will_breach",
    ),
    CircuitBreakerDecision: ("is_open", "allow_operation", "retry_after_steps"),
    PolicyDecision: ("action", "reason", "severity", "budget", "anomaly", "breaker"),
}


@pytest.mark.parametrize("cls", list(RESULT_FIELDS))
def test_results_are_frozen_slotted_dataclasses_with_03_fields(cls: type) -> None:
    assert tuple(f.name for f in dataclasses.fields(cls)) == RESULT_FIELDS[cls]
    assert "__slots__" in vars(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen is True


def test_result_instances_cannot_change_or_grow() -> None:
    r = check_budget(1.0, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.current_spend = 5.0  # type: ignore[misc]
    assert not hasattr(r, "__dict__")
    with pytest.raises((AttributeError, TypeError)):
        r.extra = 1  # type: ignore[attr-defined]


def test_errors_are_value_errors_and_cloudcircuit_errors() -> None:
    with pytest.raises(ValueError) as info:
        check_budget(1.0, 0.0)
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, CloudCircuitError)


# -- the 0.3 README quickstart ------------------------------------------------------------


def test_readme_quickstart_values() -> None:
    budget = check_budget(current_spend=920.0, budget_limit=1000.0, warning_ratio=0.9)
    anomaly = check_anomaly_spike(QUICK, spike_multiplier=1.6)
    robust = check_anomaly_robust(QUICK, method="mad", z_threshold=3.5)
    p95 = check_anomaly_robust(QUICK, method="percentile", percentile=0.95)
    burn = check_burn_rate(QUICK, hot_multiplier=1.4)
    breaker = evaluate_circuit_breaker(consecutive_failures=0, failure_threshold=3)
    forecast = forecast_budget_breach(
        current_spend=920.0, budget_limit=1000.0, periods_elapsed=22, total_periods=30
    )
    policy = evaluate_spend_policy(budget=budget, anomaly=anomaly, breaker=breaker)
    alert = make_alert_payload(policy, service="billing-worker", environment="prod")

    assert (budget.usage_ratio, budget.is_warning, budget.is_breached) == (0.92, True, False)
    assert anomaly.baseline_mean == pytest.approx(359.0 / 3)
    assert anomaly.threshold == pytest.approx(359.0 / 3 * 1.6)
    assert anomaly.is_spike is True
    assert (robust.baseline_mean, robust.is_spike) == (120.0, True)
    assert robust.threshold == pytest.approx(120.0 + 3.5 / 0.6745)  # MAD of 118, 120, 121 is 1
    assert p95.threshold == pytest.approx(120.9)
    assert p95.is_spike is True
    assert burn.burn_rate_ratio == pytest.approx(250.0 / (359.0 / 3))
    assert burn.is_hot is True
    assert breaker == CircuitBreakerDecision(False, True, 0)
    assert forecast.projected_total_spend == pytest.approx(920.0 / 22 * 30)
    assert forecast.projected_overrun == pytest.approx(920.0 / 22 * 30 - 1000.0)
    assert forecast.will_breach is True
    assert (policy.action, policy.severity) == ("throttle", "warning")
    assert alert["action"] == "throttle"
    assert alert["service"] == "billing-worker"
