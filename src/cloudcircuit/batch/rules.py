"""The 0.3 guardrails, one vectorized function each (same names, same validation rules)."""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from cloudcircuit.batch._kernels import (
    Chunk,
    is_scalar,
    lengths_of,
    mad_location,
    matrix,
    param,
    quantile_sorted,
    raise_first,
    require,
    run_chunks,
)
from cloudcircuit.batch.results import (
    ACTIONS,
    REASONS,
    SEVERITIES,
    AnomalyArrays,
    BreakerArrays,
    BudgetArrays,
    BurnRateArrays,
    FloatArray,
    ForecastArrays,
    IntArray,
    PolicyArrays,
    frozen,
)
from cloudcircuit.errors import InputError
from cloudcircuit.guardrails import MAD_TO_SIGMA

__all__ = [
    "check_anomaly_robust",
    "check_anomaly_spike",
    "check_budget",
    "check_burn_rate",
    "evaluate_circuit_breaker",
    "evaluate_spend_policy",
    "forecast_budget_breach",
]


# -- the guardrails, vectorized -----------------------------------------------------------


def _rows(n: int | None, **args: Any) -> int:
    """Number of rows implied by scalar-or-1-D arguments (``n`` when all are scalars)."""
    sizes = set()
    for name, value in args.items():
        shape = np.shape(value)
        if len(shape) > 1:
            raise InputError(f"{name} must be a number or a 1-D array, got shape {shape}")
        if shape:
            sizes.add(shape[0])
    if n is not None:
        sizes.add(n)
    if len(sizes) > 1:
        raise InputError(f"row counts disagree: {sorted(sizes)} ({', '.join(args)})")
    return sizes.pop() if sizes else 1


def check_budget(
    current_spend: npt.ArrayLike,
    budget_limit: npt.ArrayLike,
    warning_ratio: npt.ArrayLike = 0.9,
    *,
    n: int | None = None,
) -> BudgetArrays:
    """:func:`cloudcircuit.check_budget` per row; arguments are scalars or (N,) arrays."""
    rows = _rows(
        n, current_spend=current_spend, budget_limit=budget_limit, warning_ratio=warning_ratio
    )
    spend = param("current_spend", current_spend, rows)
    limit = param("budget_limit", budget_limit, rows)
    ratio = param("warning_ratio", warning_ratio, rows)
    require("budget_limit", limit, limit > 0, "must be > 0", is_scalar(budget_limit))
    require(
        "warning_ratio",
        ratio,
        (ratio > 0) & (ratio <= 1),
        "must be in (0, 1]",
        is_scalar(warning_ratio),
    )
    require("current_spend", spend, spend >= 0, "must be >= 0", is_scalar(current_spend))
    with np.errstate(over="ignore"):
        usage = spend / limit
    return frozen(
        BudgetArrays(
            current_spend=spend.copy(),
            budget_limit=limit.copy(),
            usage_ratio=usage,
            remaining_budget=limit - spend,
            is_warning=usage >= ratio,
            is_breached=spend >= limit,
        )
    )


def spike_params(
    mult: npt.ArrayLike, floor: npt.ArrayLike, n: int
) -> tuple[FloatArray, FloatArray]:
    m = param("spike_multiplier", mult, n)
    f = param("min_baseline", floor, n)
    require("spike_multiplier", m, m > 1.0, "must be > 1.0", is_scalar(mult))
    require("min_baseline", f, f >= 0, "must be >= 0", is_scalar(floor))
    return m, f


def robust_params(
    method: str,
    z: npt.ArrayLike,
    min_mad: npt.ArrayLike,
    p: npt.ArrayLike,
    floor: npt.ArrayLike,
    n: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    fl = param("min_baseline", floor, n)
    require("min_baseline", fl, fl >= 0, "must be >= 0", is_scalar(floor))
    zs = param("z_threshold", z, n)
    mm = param("min_mad", min_mad, n)
    ps = param("percentile", p, n)
    if method == "mad":
        require("z_threshold", zs, zs > 0, "must be > 0", is_scalar(z))
        require("min_mad", mm, mm >= 0, "must be >= 0", is_scalar(min_mad))
    elif method == "percentile":
        require("percentile", ps, (ps > 0) & (ps < 1), "must be in (0, 1)", is_scalar(p))
    else:
        raise InputError(f"method must be 'mad' or 'percentile', got {method!r}")
    return zs, mm, ps, fl


def hot_param(mult: npt.ArrayLike, n: int) -> FloatArray:
    m = param("hot_multiplier", mult, n)
    require("hot_multiplier", m, m > 1.0, "must be > 1.0", is_scalar(mult))
    return m


def empty_anomaly(n: int) -> AnomalyArrays:
    return AnomalyArrays(np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool))


def fill_spike(
    out: AnomalyArrays, sl: slice, c: Chunk, mult: FloatArray, floor: FloatArray
) -> None:
    assert c.mean is not None
    with np.errstate(over="ignore"):
        threshold = np.maximum(c.mean, floor[sl]) * mult[sl]
    out.latest_spend[sl] = c.latest
    out.baseline_mean[sl] = c.mean
    out.threshold[sl] = threshold
    out.is_spike[sl] = c.latest > threshold


def fill_mad(
    out: AnomalyArrays, sl: slice, c: Chunk, z: FloatArray, min_mad: FloatArray, floor: FloatArray
) -> None:
    loc, mad = mad_location(c, min_mad[sl])
    with np.errstate(over="ignore", invalid="ignore"):
        sigma = np.where(mad > 0, mad / MAD_TO_SIGMA, 0.0)
        threshold = np.maximum(loc, floor[sl]) + z[sl] * sigma
    out.latest_spend[sl] = c.latest
    out.baseline_mean[sl] = loc
    out.threshold[sl] = threshold
    out.is_spike[sl] = c.latest > threshold


def fill_percentile(
    out: AnomalyArrays, sl: slice, c: Chunk, p: FloatArray, floor: FloatArray
) -> None:
    assert c.ordered is not None
    loc = quantile_sorted(c.ordered, c.n, p[sl])
    threshold = np.maximum(loc, floor[sl])
    out.latest_spend[sl] = c.latest
    out.baseline_mean[sl] = loc
    out.threshold[sl] = threshold
    out.is_spike[sl] = c.latest > threshold


def fill_burn(out: BurnRateArrays, sl: slice, c: Chunk, mult: FloatArray) -> None:
    assert c.mean is not None
    avg, latest = c.mean, c.latest
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.where(avg == 0, np.where(latest > 0, np.inf, 1.0), latest / avg)
    out.latest_spend[sl] = latest
    out.average_spend[sl] = avg
    out.burn_rate_ratio[sl] = ratio
    out.is_hot[sl] = ratio >= mult[sl]


def check_anomaly_spike(
    values: npt.ArrayLike,
    *,
    lengths: npt.ArrayLike | None = None,
    spike_multiplier: npt.ArrayLike = 1.5,
    min_baseline: npt.ArrayLike = 0.0,
) -> AnomalyArrays:
    """:func:`cloudcircuit.check_anomaly_spike` for every row of ``values``."""
    x = matrix(values)
    lens = lengths_of(lengths, *x.shape)
    mult, floor = spike_params(spike_multiplier, min_baseline, x.shape[0])
    out = empty_anomaly(x.shape[0])
    run_chunks(x, lens, lambda sl, c: fill_spike(out, sl, c, mult, floor), mean=True, ordered=False)
    return frozen(out)


def check_anomaly_robust(
    values: npt.ArrayLike,
    *,
    lengths: npt.ArrayLike | None = None,
    method: Literal["mad", "percentile"] = "mad",
    z_threshold: npt.ArrayLike = 3.5,
    min_mad: npt.ArrayLike = 0.0,
    percentile: npt.ArrayLike = 0.95,
    min_baseline: npt.ArrayLike = 0.0,
) -> AnomalyArrays:
    """:func:`cloudcircuit.check_anomaly_robust` (MAD or percentile) for every row."""
    x = matrix(values)
    lens = lengths_of(lengths, *x.shape)
    z, mm, p, floor = robust_params(
        method, z_threshold, min_mad, percentile, min_baseline, x.shape[0]
    )
    out = empty_anomaly(x.shape[0])

    def work(sl: slice, c: Chunk) -> None:
        if method == "mad":
            fill_mad(out, sl, c, z, mm, floor)
        else:
            fill_percentile(out, sl, c, p, floor)

    run_chunks(x, lens, work, mean=False, ordered=True)
    return frozen(out)


def check_burn_rate(
    values: npt.ArrayLike,
    *,
    lengths: npt.ArrayLike | None = None,
    hot_multiplier: npt.ArrayLike = 1.4,
) -> BurnRateArrays:
    """:func:`cloudcircuit.check_burn_rate` for every row of ``values``."""
    x = matrix(values)
    lens = lengths_of(lengths, *x.shape)
    mult = hot_param(hot_multiplier, x.shape[0])
    n = x.shape[0]
    out = BurnRateArrays(np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool))
    run_chunks(x, lens, lambda sl, c: fill_burn(out, sl, c, mult), mean=True, ordered=False)
    return frozen(out)


def _periods(name: str, value: npt.ArrayLike, n: int) -> npt.NDArray[Any]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{name} must be a number or a 1-D numeric array, got {value!r}")
    param(name, arr, n)  # shape and finiteness
    out = arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float64)
    return out if out.ndim else np.full(n, out[()], dtype=out.dtype)  # astype copied


def forecast_budget_breach(
    current_spend: npt.ArrayLike,
    budget_limit: npt.ArrayLike,
    periods_elapsed: npt.ArrayLike,
    total_periods: npt.ArrayLike,
    *,
    n: int | None = None,
) -> ForecastArrays:
    """:func:`cloudcircuit.forecast_budget_breach` per row: ``spend / elapsed * total``."""
    rows = _rows(
        n,
        current_spend=current_spend,
        budget_limit=budget_limit,
        periods_elapsed=periods_elapsed,
        total_periods=total_periods,
    )
    spend = param("current_spend", current_spend, rows)
    limit = param("budget_limit", budget_limit, rows)
    elapsed = _periods("periods_elapsed", periods_elapsed, rows)
    total = _periods("total_periods", total_periods, rows)
    require("current_spend", spend, spend >= 0, "must be >= 0", is_scalar(current_spend))
    require("budget_limit", limit, limit > 0, "must be > 0", is_scalar(budget_limit))
    require("periods_elapsed", elapsed, elapsed > 0, "must be > 0", is_scalar(periods_elapsed))
    require("total_periods", total, total > 0, "must be > 0", is_scalar(total_periods))
    require(
        "periods_elapsed",
        elapsed,
        elapsed <= total,
        "must be <= total_periods",
        is_scalar(periods_elapsed) and is_scalar(total_periods),
    )
    with np.errstate(over="ignore"):
        projected = (spend / elapsed) * total
        overrun = np.maximum(0.0, projected - limit)
    return frozen(
        ForecastArrays(
            current_spend=spend.copy(),
            budget_limit=limit.copy(),
            periods_elapsed=elapsed,
            total_periods=total,
            projected_total_spend=projected,
            projected_overrun=overrun,
            will_breach=projected >= limit,
        )
    )


def _counts(name: str, value: npt.ArrayLike, n: int) -> IntArray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise InputError(f"{name} must be an integer or a 1-D integer array, got {value!r}")
    if arr.dtype.kind == "f":
        param(name, arr, n)
        if (arr != np.round(arr)).any():
            raise_first(name, arr, arr != np.round(arr), "must be a whole number")
    ints = arr.astype(np.int64)
    return ints if ints.ndim else np.full(n, ints[()], dtype=np.int64)


def evaluate_circuit_breaker(
    consecutive_failures: npt.ArrayLike,
    failure_threshold: npt.ArrayLike = 3,
    cooldown_steps_remaining: npt.ArrayLike = 0,
    *,
    n: int | None = None,
) -> BreakerArrays:
    """:func:`cloudcircuit.evaluate_circuit_breaker` per row."""
    rows = _rows(
        n,
        consecutive_failures=consecutive_failures,
        failure_threshold=failure_threshold,
        cooldown_steps_remaining=cooldown_steps_remaining,
    )
    fails = _counts("consecutive_failures", consecutive_failures, rows)
    threshold = _counts("failure_threshold", failure_threshold, rows)
    cooldown = _counts("cooldown_steps_remaining", cooldown_steps_remaining, rows)
    for name, arr, ok, rule, raw in (
        ("consecutive_failures", fails, fails >= 0, "must be >= 0", consecutive_failures),
        ("failure_threshold", threshold, threshold > 0, "must be > 0", failure_threshold),
        (
            "cooldown_steps_remaining",
            cooldown,
            cooldown >= 0,
            "must be >= 0",
            cooldown_steps_remaining,
        ),
    ):
        require(name, cast(FloatArray, arr), ok, rule, is_scalar(raw))
    is_open = (fails >= threshold) | (cooldown > 0)
    return frozen(
        BreakerArrays(
            is_open=is_open,
            allow_operation=~is_open,
            retry_after_steps=np.where(is_open, cooldown, 0).astype(np.int64),
        )
    )


_ACTION_ARR = np.array(ACTIONS, dtype=object)
_REASON_ARR = np.array(REASONS, dtype=object)
_SEVERITY_ARR = np.array(SEVERITIES, dtype=object)


def evaluate_spend_policy(
    budget: BudgetArrays, anomaly: AnomalyArrays, breaker: BreakerArrays
) -> PolicyArrays:
    """:func:`cloudcircuit.evaluate_spend_policy` per row: block > throttle > allow."""
    if not len(budget) == len(anomaly) == len(breaker):
        raise InputError(
            f"row counts disagree: budget {len(budget)}, anomaly {len(anomaly)}, "
            f"breaker {len(breaker)}"
        )
    block = budget.is_breached | breaker.is_open
    throttle = budget.is_warning | anomaly.is_spike
    code = np.where(block, 2, np.where(throttle, 1, 0)).astype(np.int8)
    return frozen(
        PolicyArrays(
            action=_ACTION_ARR[code],
            reason=_REASON_ARR[code],
            severity=_SEVERITY_ARR[code],
            budget=budget,
            anomaly=anomaly,
            breaker=breaker,
            code=code,
        )
    )
