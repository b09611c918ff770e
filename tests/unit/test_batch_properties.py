"""Property tests: the batch engine agrees with the scalar 0.3 functions on every row, exactly.

Series mix ties, zeros, tiny and huge magnitudes; rows have their own lengths and the padding
after them holds garbage (NaN, negatives) that must be ignored. Agreement is checked with ``==``
on the scalar result dataclasses: same verdicts and the same floats, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cloudcircuit as cc
from cloudcircuit import batch
from cloudcircuit.batch import _kernels

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

point = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5, 10.0, 100.0]),  # ties and zeros
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.floats(min_value=0.0, max_value=1e-300, allow_nan=False, allow_subnormal=True),  # tiny
    st.floats(min_value=1e300, max_value=1.7e308, allow_nan=False, allow_infinity=False),  # huge
    st.integers(min_value=0, max_value=1000).map(float),
    # full-precision fractions: sums of these round, so the summation order shows
    st.integers(min_value=1, max_value=10**12).map(lambda k: k / 7.0),
    st.integers(min_value=1, max_value=10**6).map(lambda k: k * 0.1 + 1 / 3),
)
garbage = st.sampled_from([math.nan, -1.0, math.inf, 7.0, -math.inf])


@st.composite
def matrices(
    draw: st.DrawFn, max_rows: int = 6, max_cols: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """(values, lengths): left-aligned rows of 2..T points, garbage after each prefix.

    A third of the matrices have rows of one length (the kernels' uniform fast paths).
    """
    n = draw(st.integers(min_value=1, max_value=max_rows))
    t = draw(st.integers(min_value=2, max_value=max_cols))
    if draw(st.integers(0, 2)) == 0:
        lengths = np.full(n, draw(st.integers(2, t)), dtype=np.int64)
    else:
        lengths = np.array(
            draw(st.lists(st.integers(2, t), min_size=n, max_size=n)), dtype=np.int64
        )
    values = np.empty((n, t))
    for i in range(n):
        values[i, : lengths[i]] = draw(
            st.lists(point, min_size=int(lengths[i]), max_size=int(lengths[i]))
        )
        values[i, lengths[i] :] = draw(
            st.lists(garbage, min_size=t - int(lengths[i]), max_size=t - int(lengths[i]))
        )
    return values, lengths


def rows(values: np.ndarray, lengths: np.ndarray) -> list[list[float]]:
    return [values[i, : lengths[i]].tolist() for i in range(len(lengths))]


def assert_rows_equal(
    got: Any, scalar: Callable[[list[float]], Any], series: list[list[float]]
) -> None:
    for i, row in enumerate(series):
        assert got.row(i) == scalar(row), f"row {i}: {row}"


multiplier = st.floats(min_value=1.0, max_value=10.0, exclude_min=True)
floor = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e3))


@SETTINGS
@given(data=matrices(), mult=multiplier, base=floor)
def test_spike_agrees(data: tuple[np.ndarray, np.ndarray], mult: float, base: float) -> None:
    values, lengths = data
    got = batch.check_anomaly_spike(
        values, lengths=lengths, spike_multiplier=mult, min_baseline=base
    )
    assert_rows_equal(
        got,
        lambda r: cc.check_anomaly_spike(r, spike_multiplier=mult, min_baseline=base),
        rows(values, lengths),
    )


@SETTINGS
@given(
    data=matrices(),
    z=st.floats(min_value=1e-3, max_value=10.0),
    min_mad=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=50.0)),
    base=floor,
)
def test_robust_mad_agrees(
    data: tuple[np.ndarray, np.ndarray], z: float, min_mad: float, base: float
) -> None:
    values, lengths = data
    got = batch.check_anomaly_robust(
        values, lengths=lengths, method="mad", z_threshold=z, min_mad=min_mad, min_baseline=base
    )
    assert_rows_equal(
        got,
        lambda r: cc.check_anomaly_robust(
            r, method="mad", z_threshold=z, min_mad=min_mad, min_baseline=base
        ),
        rows(values, lengths),
    )


@SETTINGS
@given(
    data=matrices(),
    p=st.one_of(
        st.sampled_from([0.5, 0.25, 0.75, 0.95, 0.1]),
        st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True),
    ),
    base=floor,
)
def test_robust_percentile_agrees(
    data: tuple[np.ndarray, np.ndarray], p: float, base: float
) -> None:
    values, lengths = data
    got = batch.check_anomaly_robust(
        values, lengths=lengths, method="percentile", percentile=p, min_baseline=base
    )
    assert_rows_equal(
        got,
        lambda r: cc.check_anomaly_robust(r, method="percentile", percentile=p, min_baseline=base),
        rows(values, lengths),
    )


@SETTINGS
@given(data=matrices(), mult=multiplier)
def test_burn_rate_agrees(data: tuple[np.ndarray, np.ndarray], mult: float) -> None:
    values, lengths = data
    got = batch.check_burn_rate(values, lengths=lengths, hot_multiplier=mult)
    assert_rows_equal(
        got, lambda r: cc.check_burn_rate(r, hot_multiplier=mult), rows(values, lengths)
    )


@SETTINGS
@given(data=matrices(max_rows=4, max_cols=10), mult=multiplier)
def test_boundaries_agree_when_latest_equals_the_scalar_threshold(
    data: tuple[np.ndarray, np.ndarray], mult: float
) -> None:
    """Put the latest point exactly on the scalar threshold: both sides must say 'no spike'."""
    values, lengths = data
    series = rows(values, lengths)
    for kind in ("spike", "mad", "percentile", "burn"):
        edited = values.copy()
        for i, row in enumerate(series):
            if kind == "spike":
                edge = cc.check_anomaly_spike(row, spike_multiplier=mult).threshold
            elif kind == "burn":
                avg = cc.check_burn_rate(row, hot_multiplier=mult).average_spend
                edge = avg * mult
            else:
                edge = cc.check_anomaly_robust(row, method=kind).threshold  # type: ignore[arg-type]
            if math.isfinite(edge):
                edited[i, lengths[i] - 1] = edge
        new_rows = rows(edited, lengths)
        if kind == "spike":
            got = batch.check_anomaly_spike(edited, lengths=lengths, spike_multiplier=mult)
            assert_rows_equal(
                got, lambda r: cc.check_anomaly_spike(r, spike_multiplier=mult), new_rows
            )
        elif kind == "burn":
            burn = batch.check_burn_rate(edited, lengths=lengths, hot_multiplier=mult)
            assert_rows_equal(burn, lambda r: cc.check_burn_rate(r, hot_multiplier=mult), new_rows)
        else:
            got = batch.check_anomaly_robust(edited, lengths=lengths, method=kind)  # type: ignore[arg-type]
            assert_rows_equal(got, lambda r, k=kind: cc.check_anomaly_robust(r, method=k), new_rows)


@SETTINGS
@given(data=matrices(max_rows=5, max_cols=8))
def test_float32_input_agrees_with_its_float64_values(data: tuple[np.ndarray, np.ndarray]) -> None:
    values, lengths = data
    with np.errstate(over="ignore"):
        small = np.where(np.abs(values) < 1e30, values, 1e30).astype(np.float32)
    series = rows(small.astype(np.float64), lengths)
    got = batch.check_anomaly_robust(small, lengths=lengths)
    assert_rows_equal(got, lambda r: cc.check_anomaly_robust(r), series)
    spike = batch.check_anomaly_spike(small, lengths=lengths)
    assert_rows_equal(spike, lambda r: cc.check_anomaly_spike(r), series)


money = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)


@SETTINGS
@given(
    data=matrices(),
    limit=st.floats(min_value=1e-3, max_value=1e9),
    ratio=st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    elapsed_total=st.tuples(st.integers(1, 31), st.integers(0, 31)),
    failures=st.integers(0, 6),
    threshold=st.integers(1, 5),
    cooldown=st.integers(0, 3),
    params=st.fixed_dictionaries(
        {
            "spike_multiplier": multiplier,
            "min_baseline": floor,
            "z_threshold": st.floats(min_value=0.1, max_value=6.0),
            "percentile": st.floats(min_value=0.01, max_value=0.99),
            "hot_multiplier": multiplier,
            "policy_anomaly": st.sampled_from(["spike", "robust"]),
            "robust_method": st.sampled_from(["mad", "percentile"]),
        }
    ),
    spends=st.lists(money, min_size=6, max_size=6),
)
def test_evaluate_agrees_with_every_scalar_rule(
    data: tuple[np.ndarray, np.ndarray],
    limit: float,
    ratio: float,
    elapsed_total: tuple[int, int],
    failures: int,
    threshold: int,
    cooldown: int,
    params: dict[str, Any],
    spends: list[float],
) -> None:
    values, lengths = data
    n = len(lengths)
    elapsed, extra = elapsed_total
    spend = np.array(spends[:n])
    p = batch.GuardrailParams(warning_ratio=ratio, failure_threshold=threshold, **params)
    fails = np.full(n, failures)
    res = batch.evaluate(
        values,
        lengths=lengths,
        spend=spend,
        limit=limit,
        periods_elapsed=elapsed,
        total_periods=elapsed + extra,
        consecutive_failures=fails,
        cooldown_steps_remaining=cooldown,
        params=p,
    )
    assert res.forecast is not None
    for i, row in enumerate(rows(values, lengths)):
        budget = cc.check_budget(float(spend[i]), limit, ratio)
        spike = cc.check_anomaly_spike(row, p.spike_multiplier, p.min_baseline)
        mad = cc.check_anomaly_robust(row, method="mad", z_threshold=p.z_threshold)
        perc = cc.check_anomaly_robust(row, method="percentile", percentile=p.percentile)
        burn = cc.check_burn_rate(row, p.hot_multiplier)
        forecast = cc.forecast_budget_breach(float(spend[i]), limit, elapsed, elapsed + extra)
        breaker = cc.evaluate_circuit_breaker(failures, threshold, cooldown)
        chosen = mad if p.robust_method == "mad" else perc
        policy = cc.evaluate_spend_policy(
            budget, spike if p.policy_anomaly == "spike" else chosen, breaker
        )
        assert res.budget.row(i) == budget
        assert res.spike.row(i) == spike
        assert res.robust_mad.row(i) == mad
        assert res.robust_percentile.row(i) == perc
        assert res.robust.row(i) == chosen
        assert res.burn_rate.row(i) == burn
        assert res.forecast.row(i) == forecast
        assert res.breaker.row(i) == breaker
        assert res.policy.row(i) == policy
        assert (res.policy.action[i], res.policy.severity[i], res.policy.reason[i]) == (
            policy.action,
            policy.severity,
            policy.reason,
        )
        fired = {e.rule: e.fired for e in res.evidence(i)}
        assert fired["spike"] == spike.is_spike
        assert fired["robust"] == chosen.is_spike
        assert fired["burn_rate"] == burn.is_hot
        assert fired["forecast"] == forecast.will_breach
        assert fired["breaker"] == breaker.is_open
        assert fired["budget"] == (budget.is_warning or budget.is_breached)


@SETTINGS
@given(data=matrices(max_rows=30, max_cols=9))
def test_chunking_does_not_change_results(data: tuple[np.ndarray, np.ndarray]) -> None:
    values, lengths = data
    whole = batch.evaluate(values, lengths=lengths, spend=1.0, limit=2.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "CHUNK_CELLS", 1)  # 64-row minimum chunks would still be one
        mp.setattr(_kernels, "MIN_CHUNK_ROWS", 3)
        parts = batch.evaluate(values, lengths=lengths, spend=1.0, limit=2.0)
    for name in ("spike", "robust_mad", "robust_percentile", "burn_rate"):
        a, b = getattr(whole, name), getattr(parts, name)
        for i in range(len(lengths)):
            assert a.row(i) == b.row(i)


# -- the summation order ------------------------------------------------------------------


def _python311_sum(xs: list[float]) -> float:
    total = 0.0
    for x in xs:
        total += x
    return total


def _neumaier_sum(xs: list[float]) -> float:
    """CPython 3.12+ ``sum()`` over floats (Neumaier), written out."""
    total, comp = 0.0, 0.0
    for x in xs:
        t = total + x
        if abs(total) >= abs(x):
            comp += (total - t) + x
        else:
            comp += (x - t) + total
        total = t
    if comp and math.isfinite(comp):
        total += comp
    return total


@SETTINGS
@given(
    data=st.lists(st.lists(point, min_size=1, max_size=12), min_size=1, max_size=6),
    compensated=st.booleans(),
)
def test_row_sums_follow_both_summation_orders(data: list[list[float]], compensated: bool) -> None:
    width = max(len(r) for r in data)
    h = np.zeros((len(data), width))  # zero padding is neutral in both algorithms
    for i, r in enumerate(data):
        h[i, : len(r)] = r
    reference = _neumaier_sum if compensated else _python311_sum
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_kernels, "_COMPENSATED_SUM", compensated)
        got = _kernels.row_sums(h)
    for i, r in enumerate(data):
        expected = reference(r)
        assert got[i] == expected or (math.isnan(got[i]) and math.isnan(expected))


def test_this_interpreter_sum_is_the_one_detected() -> None:
    xs = [0.1] * 10 + [1e16, 1.0, -1e16, 3.3]
    expected = _neumaier_sum(xs) if _kernels._COMPENSATED_SUM else _python311_sum(xs)
    assert sum(xs) == expected
