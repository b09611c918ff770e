"""The batch engine: shapes, validation messages that name the row, evidence, detectors."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest

import cloudcircuit as cc
from cloudcircuit import batch
from cloudcircuit.batch import _kernels
from cloudcircuit.decision import Evidence, combine
from cloudcircuit.errors import InputError

QUICK = [120.0, 118.0, 121.0, 250.0]


def quick_matrix() -> tuple[np.ndarray, np.ndarray]:
    values = np.array(
        [
            QUICK,  # spike
            [100.0, 101.0, 99.0, 100.0],  # calm
            [5.0, 5.0, 0.0, 0.0],  # short row: 5, 5 (then padding)
        ]
    )
    return values, np.array([4, 4, 2])


# -- shapes and types ---------------------------------------------------------------------

SCALAR_OF = {
    batch.BudgetArrays: cc.BudgetCheckResult,
    batch.AnomalyArrays: cc.AnomalyCheckResult,
    batch.BurnRateArrays: cc.BurnRateResult,
    batch.ForecastArrays: cc.ForecastResult,
    batch.BreakerArrays: cc.CircuitBreakerDecision,
}


@pytest.mark.parametrize("cls", list(SCALAR_OF))
def test_result_arrays_have_the_scalar_field_names(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    assert names == [f.name for f in dataclasses.fields(SCALAR_OF[cls])]
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "__slots__" in vars(cls)


def test_policy_arrays_carry_the_scalar_fields_plus_a_code() -> None:
    names = [f.name for f in dataclasses.fields(batch.PolicyArrays)]
    assert names[:6] == [f.name for f in dataclasses.fields(cc.PolicyDecision)]
    assert names[6:] == ["code"]


def test_quickstart_rows_match_the_scalar_api() -> None:
    values, lengths = quick_matrix()
    spike = batch.check_anomaly_spike(values, lengths=lengths, spike_multiplier=1.6)
    assert spike.row(0) == cc.check_anomaly_spike(QUICK, spike_multiplier=1.6)
    assert spike.is_spike.tolist() == [True, False, False]
    assert spike.row(2) == cc.check_anomaly_spike([5.0, 5.0], spike_multiplier=1.6)
    mad = batch.check_anomaly_robust(values, lengths=lengths)
    assert mad.row(0) == cc.check_anomaly_robust(QUICK)
    p95 = batch.check_anomaly_robust(values, lengths=lengths, method="percentile")
    assert p95.row(0) == cc.check_anomaly_robust(QUICK, method="percentile")
    burn = batch.check_burn_rate(values, lengths=lengths)
    assert burn.row(0) == cc.check_burn_rate(QUICK)
    assert burn.burn_rate_ratio.dtype == np.float64
    assert spike.is_spike.dtype == np.bool_


def test_lengths_default_to_every_column() -> None:
    values = np.array([QUICK, QUICK])
    assert batch.check_burn_rate(values).row(1) == cc.check_burn_rate(QUICK)


def test_zero_rows() -> None:
    res = batch.evaluate(np.empty((0, 5)), spend=np.empty(0), limit=1.0)
    assert len(res) == 0
    assert res.policy.action.shape == (0,)


def test_per_row_parameters() -> None:
    values = np.array([QUICK, QUICK])
    res = batch.check_anomaly_spike(values, spike_multiplier=np.array([1.5, 3.0]))
    assert res.row(0) == cc.check_anomaly_spike(QUICK, 1.5)
    assert res.row(1) == cc.check_anomaly_spike(QUICK, 3.0)
    assert res.is_spike.tolist() == [True, False]
    budget = batch.check_budget(
        np.array([50.0, 95.0]), np.array([100.0, 100.0]), np.array([0.4, 0.99])
    )
    assert budget.is_warning.tolist() == [True, False]


def test_budget_forecast_breaker_policy_rows() -> None:
    spend = np.array([0.0, 90.0, 100.0, 400.0])
    budget = batch.check_budget(spend, 100.0)
    for i, s in enumerate(spend):
        assert budget.row(i) == cc.check_budget(float(s), 100.0)
    forecast = batch.forecast_budget_breach(spend, 1000.0, np.array([1, 10, 30, 15]), 30)
    for i, (s, e) in enumerate(zip(spend, [1, 10, 30, 15], strict=True)):
        assert forecast.row(i) == cc.forecast_budget_breach(float(s), 1000.0, e, 30)
    assert forecast.periods_elapsed.dtype == np.int64
    breaker = batch.evaluate_circuit_breaker(np.array([0, 2, 3, 0]), 3, np.array([0, 0, 0, 2]))
    for i, (f, c) in enumerate([(0, 0), (2, 0), (3, 0), (0, 2)]):
        assert breaker.row(i) == cc.evaluate_circuit_breaker(f, 3, c)
    anomaly = batch.AnomalyArrays(
        np.zeros(4), np.zeros(4), np.zeros(4), np.array([False, False, False, True])
    )
    policy = batch.evaluate_spend_policy(budget, anomaly, breaker)
    assert policy.action.tolist() == ["allow", "throttle", "block", "block"]
    assert policy.severity.tolist() == ["info", "warning", "critical", "critical"]
    assert policy.code.tolist() == [0, 1, 2, 2]
    for i in range(4):
        assert policy.row(i) == cc.evaluate_spend_policy(
            budget.row(i), anomaly.row(i), breaker.row(i)
        )


@pytest.mark.parametrize(("seed", "width"), [(1, 301), (2, 301), (3, 90), (4, 90)])
def test_long_ragged_series_agree_with_the_scalar_rules(seed: int, width: int) -> None:
    # width 90: 89 history points, sorted in rows padded to 96 (see _kernels._sort_width)
    rng = np.random.default_rng(seed)
    values = np.round(rng.gamma(1.5, 40.0, size=(60, width)), rng.integers(0, 3))
    values[::9] = np.round(values[::9] / 40.0)  # heavy ties
    lengths = rng.integers(2, width + 1, size=60)
    lengths[:3] = [2, 3, width]
    if seed == 4:
        lengths[:] = width  # uniform rows
    res = batch.evaluate(values, lengths=lengths, spend=1.0, limit=2.0)
    for i in range(60):
        row = values[i, : lengths[i]].tolist()
        assert res.spike.row(i) == cc.check_anomaly_spike(row)
        assert res.robust_mad.row(i) == cc.check_anomaly_robust(row)
        assert res.robust_percentile.row(i) == cc.check_anomaly_robust(row, method="percentile")
        assert res.burn_rate.row(i) == cc.check_burn_rate(row)


def test_float32_input_is_widened_per_chunk() -> None:
    values = np.array([QUICK, [1.5, 2.25, 3.0, 9.0]], dtype=np.float32)
    res = batch.check_anomaly_robust(values)
    assert res.threshold.dtype == np.float64
    assert res.row(1) == cc.check_anomaly_robust([1.5, 2.25, 3.0, 9.0])


def test_stack_rows_left_aligns_ragged_series() -> None:
    values, lengths = batch.stack_rows(
        [[1.0, 2.0, 3.0], [4.0, 5.0], np.array([6.0, 7.0, 8.0, 9.0])]
    )
    assert lengths.tolist() == [3, 2, 4]
    assert values.tolist() == [[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]]
    res = batch.check_burn_rate(values, lengths=lengths)
    assert res.row(1) == cc.check_burn_rate([4.0, 5.0])


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (-1.0, "values[1, 2] = -1.0: spend must be >= 0"),
        (math.nan, "values[1, 2] = nan: spend must be finite"),
        (math.inf, "values[1, 2] = inf: spend must be finite"),
    ],
)
def test_bad_points_name_row_and_column(cell: float, message: str) -> None:
    values = np.ones((3, 4))
    values[1, 2] = cell
    values[2, 3] = -5.0  # a later bad cell: the first one is reported
    for call in (
        lambda: batch.check_anomaly_spike(values),
        lambda: batch.check_anomaly_robust(values),
        lambda: batch.check_burn_rate(values),
        lambda: batch.evaluate(values, spend=1.0, limit=2.0),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value) == message


def test_bad_latest_point_is_named_too() -> None:
    values = np.ones((2, 3))
    values[1, 2] = -0.5
    with pytest.raises(InputError, match=r"values\[1, 2\] = -0.5"):
        batch.check_burn_rate(values)


def test_padding_after_a_row_is_ignored_and_errors_inside_it_are_not() -> None:
    values = np.array([[1.0, 2.0, math.nan, -3.0], [1.0, 2.0, 3.0, 4.0]])
    res = batch.check_anomaly_spike(values, lengths=np.array([2, 4]))
    assert res.row(0) == cc.check_anomaly_spike([1.0, 2.0])
    with pytest.raises(InputError, match=r"values\[0, 2\] = nan"):
        batch.check_anomaly_spike(values, lengths=np.array([3, 4]))


def test_errors_in_a_later_chunk_name_the_global_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 4)
    values = np.ones((20, 5))
    values[17, 3] = -1.0
    with pytest.raises(InputError, match=r"^values\[17, 3\] = -1.0: spend must be >= 0$"):
        batch.check_anomaly_robust(values)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_first_bad_row_wins_across_threaded_chunks(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 3)
    values = np.ones((30, 4))
    values[25, 1] = math.nan
    values[7, 2] = -2.0  # chunk 2 of 10: reported although later chunks fail too
    with pytest.raises(InputError, match=r"^values\[7, 2\] = -2.0: spend must be >= 0$"):
        batch.evaluate(values, spend=1.0, limit=2.0, workers=workers)


def test_threads_and_one_thread_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 16)
    rng = np.random.default_rng(11)
    values = np.round(rng.gamma(2.0, 10.0, size=(200, 30)), 1)
    lengths = rng.integers(2, 31, size=200)
    one = batch.evaluate(values, lengths=lengths, spend=1.0, limit=2.0, workers=1)
    many = batch.evaluate(values, lengths=lengths, spend=1.0, limit=2.0, workers=4)
    for name in ("spike", "robust_mad", "robust_percentile", "burn_rate"):
        a, b = getattr(one, name), getattr(many, name)
        for f in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    assert one.robust_mad.row(123) == cc.check_anomaly_robust(values[123, : lengths[123]].tolist())


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([4, 1, 4], r"lengths\[1\] = 1: row 1 spend_series must contain at least 2 points"),
        ([4, 4, 5], r"lengths\[2\] = 5: values has only 4 columns"),
        ([4, 4], r"lengths must be 3 integers"),
        ([4.0, 4.0, 4.0], r"lengths must be 3 integers"),
    ],
)
def test_bad_lengths(lengths: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        batch.check_anomaly_spike(np.ones((3, 4)), lengths=np.array(lengths))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.ones(4), "values must be 2-D"),
        (np.ones((2, 2, 2)), "values must be 2-D"),
        (np.array([["a", "b"]]), "values must be a numeric array"),
        (np.ones((3, 1)), "spend_series must contain at least 2 points"),
    ],
)
def test_bad_matrix(values: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        batch.check_burn_rate(values)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda v: batch.check_anomaly_spike(v, spike_multiplier=1.0),
            "spike_multiplier = 1.0: must be > 1.0",
        ),
        (
            lambda v: batch.check_anomaly_spike(v, min_baseline=-1.0),
            "min_baseline = -1.0: must be >= 0",
        ),
        (
            lambda v: batch.check_anomaly_spike(v, spike_multiplier=np.array([2.0, 0.5])),
            r"spike_multiplier[1] = 0.5: must be > 1.0",
        ),
        (
            lambda v: batch.check_anomaly_spike(v, spike_multiplier=math.nan),
            "spike_multiplier = nan: must be finite",
        ),
        (
            lambda v: batch.check_anomaly_robust(v, z_threshold=0.0),
            "z_threshold = 0.0: must be > 0",
        ),
        (lambda v: batch.check_anomaly_robust(v, min_mad=-1.0), "min_mad = -1.0: must be >= 0"),
        (
            lambda v: batch.check_anomaly_robust(v, method="percentile", percentile=1.0),
            "percentile = 1.0: must be in (0, 1)",
        ),
        (
            lambda v: batch.check_anomaly_robust(v, method="iqr"),
            "method must be 'mad' or 'percentile'",
        ),  # type: ignore[arg-type]
        (
            lambda v: batch.check_burn_rate(v, hot_multiplier=1.0),
            "hot_multiplier = 1.0: must be > 1.0",
        ),
        (
            lambda v: batch.check_burn_rate(v, hot_multiplier=np.array([2.0, 2.0, 2.0])),
            "hot_multiplier has 3 entries, expected 2",
        ),
    ],
)
def test_bad_rule_parameters(call: Any, message: str) -> None:
    values = np.array([QUICK, QUICK])
    with pytest.raises(InputError) as info:
        call(values)
    assert str(info.value).startswith(message)


def test_other_methods_options_are_not_validated_as_in_03() -> None:
    values = np.array([QUICK])
    batch.check_anomaly_robust(values, method="percentile", z_threshold=-1.0)
    batch.check_anomaly_robust(values, method="mad", percentile=3.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: batch.check_budget(np.array([1.0, -2.0]), 10.0),
            r"current_spend[1] = -2.0: must be >= 0",
        ),
        (lambda: batch.check_budget(np.array([1.0]), 0.0), "budget_limit = 0.0: must be > 0"),
        (
            lambda: batch.check_budget(np.array([1.0]), 5.0, 1.5),
            "warning_ratio = 1.5: must be in (0, 1]",
        ),
        (
            lambda: batch.check_budget(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0])),
            "row counts disagree",
        ),
        (lambda: batch.forecast_budget_breach(1.0, 10.0, 0, 3), "periods_elapsed = 0: must be > 0"),
        (
            lambda: batch.forecast_budget_breach(1.0, 10.0, 4, 3),
            "periods_elapsed = 4: must be <= total_periods",
        ),
        (
            lambda: batch.forecast_budget_breach(np.array([1.0, 1.0]), 10.0, np.array([1, 5]), 3),
            r"periods_elapsed[1] = 5: must be <= total_periods",
        ),
        (lambda: batch.forecast_budget_breach(1.0, 10.0, 1, 0), "total_periods = 0: must be > 0"),
        (
            lambda: batch.forecast_budget_breach(-1.0, 10.0, 1, 3),
            "current_spend = -1.0: must be >= 0",
        ),
        (
            lambda: batch.evaluate_circuit_breaker(np.array([0, -1])),
            r"consecutive_failures[1] = -1: must be >= 0",
        ),
        (lambda: batch.evaluate_circuit_breaker(0, 0), "failure_threshold = 0: must be > 0"),
        (
            lambda: batch.evaluate_circuit_breaker(0, 3, -1),
            "cooldown_steps_remaining = -1: must be >= 0",
        ),
        (
            lambda: batch.evaluate_circuit_breaker(1.5),
            "consecutive_failures = 1.5: must be a whole number",
        ),
        (
            lambda: batch.evaluate_circuit_breaker(math.nan),
            "consecutive_failures = nan: must be finite",
        ),
    ],
)
def test_bad_vector_arguments(call: Any, message: str) -> None:
    with pytest.raises(InputError) as info:
        call()
    assert str(info.value).startswith(message)


def test_every_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        batch.check_anomaly_spike(np.array([[1.0, -1.0]]))


def test_policy_needs_rows_of_one_length() -> None:
    budget = batch.check_budget(np.array([1.0, 2.0]), 10.0)
    anomaly = batch.check_anomaly_spike(np.array([QUICK]))
    breaker = batch.evaluate_circuit_breaker(0, n=2)
    with pytest.raises(InputError, match="row counts disagree"):
        batch.evaluate_spend_policy(budget, anomaly, breaker)


def test_evaluate_validates_params() -> None:
    values = np.array([QUICK])
    with pytest.raises(InputError, match="z_threshold"):
        batch.evaluate(values, spend=1.0, limit=2.0, params=batch.GuardrailParams(z_threshold=0.0))
    with pytest.raises(InputError, match="percentile"):
        batch.evaluate(values, spend=1.0, limit=2.0, params=batch.GuardrailParams(percentile=0.0))
    with pytest.raises(InputError, match="robust_method"):
        batch.evaluate(
            values, spend=1.0, limit=2.0, params=batch.GuardrailParams(robust_method="x")
        )  # type: ignore[arg-type]
    with pytest.raises(InputError, match="both periods_elapsed and total_periods"):
        batch.evaluate(values, spend=1.0, limit=2.0, periods_elapsed=3)
    with pytest.raises(InputError, match="row counts disagree"):
        batch.evaluate(values, spend=np.array([1.0, 2.0]), limit=2.0)


# -- evaluate and evidence ----------------------------------------------------------------


def run_quick(**kwargs: Any) -> batch.BatchResult:
    values, lengths = quick_matrix()
    defaults: dict[str, Any] = {
        "lengths": lengths,
        "spend": np.array([920.0, 100.0, 1200.0]),
        "limit": 1000.0,
        "periods_elapsed": 22,
        "total_periods": 30,
        "consecutive_failures": np.array([0, 0, 3]),
    }
    return batch.evaluate(values, **{**defaults, **kwargs})


def test_evaluate_runs_every_rule() -> None:
    res = run_quick()
    assert res.budget.row(0) == cc.check_budget(920.0, 1000.0)
    assert res.spike.row(0) == cc.check_anomaly_spike(QUICK)
    assert res.robust_mad.row(0) == cc.check_anomaly_robust(QUICK)
    assert res.robust_percentile.row(0) == cc.check_anomaly_robust(QUICK, method="percentile")
    assert res.burn_rate.row(2) == cc.check_burn_rate([5.0, 5.0])
    assert res.forecast is not None
    assert res.forecast.row(1) == cc.forecast_budget_breach(100.0, 1000.0, 22, 30)
    assert res.breaker.is_open.tolist() == [False, False, True]
    assert res.policy.action.tolist() == ["throttle", "allow", "block"]


def test_evidence_names_every_rule_in_order() -> None:
    res = run_quick()
    rules = [e.rule for e in res.evidence(0)]
    assert rules == ["budget", "spike", "robust", "burn_rate", "forecast", "breaker"]
    assert all(isinstance(e, Evidence) for e in res.evidence(0))
    json.dumps([e.to_dict() for e in res.evidence(0)])  # plain Python numbers


def test_evidence_numbers_and_actions() -> None:
    res = run_quick()
    ev = {e.rule: e for e in res.evidence(0)}
    budget = cc.check_budget(920.0, 1000.0)
    assert ev["budget"].fired is True
    assert ev["budget"].action == "throttle"
    assert ev["budget"].observed == 920.0
    assert ev["budget"].threshold == 900.0
    assert ev["budget"].score == budget.usage_ratio
    spike = cc.check_anomaly_spike(QUICK)
    assert (
        ev["spike"].fired,
        ev["spike"].observed,
        ev["spike"].threshold,
        ev["spike"].expected,
    ) == (
        True,
        250.0,
        spike.threshold,
        spike.baseline_mean,
    )
    assert ev["robust"].data["method"] == "mad"
    assert ev["burn_rate"].observed == cc.check_burn_rate(QUICK).burn_rate_ratio
    assert ev["burn_rate"].threshold == 1.4
    assert ev["forecast"].fired is True
    assert ev["forecast"].threshold == 1000.0
    assert ev["breaker"].fired is False
    assert ev["breaker"].detail.startswith("circuit breaker closed")
    breached = {e.rule: e for e in res.evidence(2)}
    assert (breached["budget"].fired, breached["budget"].action) == (True, "block")
    assert breached["budget"].threshold == 1000.0
    assert (breached["breaker"].fired, breached["breaker"].action) == (True, "block")
    assert breached["breaker"].observed == 3.0
    assert breached["breaker"].detail.startswith("circuit breaker open (3 consecutive failures")
    calm = res.evidence(1)
    assert [e.rule for e in calm if e.fired] == []
    assert combine("b", {}, calm).action == "allow"
    assert combine("b", {}, res.evidence(2)).action == "block"


def test_evidence_follows_params() -> None:
    params = batch.GuardrailParams(
        spike_enabled=False,
        robust_method="percentile",
        robust_action="block",
        burn_rate_enabled=False,
        forecast_action="block",
        policy_anomaly="robust",
    )
    res = run_quick(params=params)
    ev = {e.rule: e for e in res.evidence(0)}
    assert set(ev) == {"budget", "robust", "forecast", "breaker"}
    assert ev["robust"].data["method"] == "percentile"
    assert ev["robust"].action == "block"
    assert ev["forecast"].action == "block"
    assert res.robust is res.robust_percentile
    assert res.policy.anomaly is res.robust_percentile
    assert combine("b", {}, res.evidence(0)).action == "block"


def test_forecast_evidence_needs_periods() -> None:
    res = run_quick(periods_elapsed=None, total_periods=None)
    assert res.forecast is None
    assert "forecast" not in [e.rule for e in res.evidence(0)]


def test_evidence_row_out_of_range() -> None:
    with pytest.raises(IndexError):
        run_quick().evidence(3)
    assert run_quick().evidence(-1)[0].observed == 1200.0


@dataclasses.dataclass
class _Doubling:
    """An extra detector: fires when the latest point is at least twice the first one."""

    name: str = "doubling"
    action: str = "block"
    calls: int = 0

    def __call__(self, values: np.ndarray, lengths: np.ndarray) -> batch.DetectorArrays:
        self.calls += 1
        latest = values[np.arange(len(lengths)), lengths - 1]
        first = values[:, 0]
        return batch.DetectorArrays(
            fired=latest >= 2 * first,
            observed=latest,
            threshold=2 * first,
            expected=first,
            score=latest / np.maximum(first, 1e-9),
        )


def test_extra_detector_callables_add_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 2)
    det = _Doubling()
    res = run_quick(detectors=[det])
    assert det.calls == 2  # once per chunk
    ev = res.evidence(0)[-1]
    assert (ev.rule, ev.fired, ev.action, ev.observed, ev.threshold) == (
        "doubling",
        True,
        "block",
        250.0,
        240.0,
    )
    assert res.evidence(2)[-1].observed == 5.0  # the short row's own latest point, not padding
    assert res.evidence(1)[-1].fired is False


def test_extra_detector_names_must_not_clash() -> None:
    with pytest.raises(InputError, match="must be unique"):
        run_quick(detectors=[_Doubling(name="spike")])
    with pytest.raises(InputError, match="must be unique"):
        run_quick(detectors=[_Doubling(), _Doubling()])


def test_extra_detector_must_return_its_arrays() -> None:
    class Broken:
        name = "broken"

        def __call__(self, values: np.ndarray, lengths: np.ndarray) -> Any:
            return batch.DetectorArrays(
                fired=np.zeros(1, dtype=bool),
                observed=np.zeros(1),
                threshold=np.zeros(1),
                expected=np.zeros(1),
                score=np.zeros(1),
            )

    with pytest.raises(InputError, match="detector 'broken': fired has shape"):
        run_quick(detectors=[Broken()])


def test_named_detectors_from_cloudcircuit_detectors() -> None:
    detectors = pytest.importorskip("cloudcircuit.detectors")
    rng = np.random.default_rng(5)
    days = 8 * 7
    base = 100 + 10 * np.sin(np.arange(days) * 2 * np.pi / 7)
    values = np.vstack([base + rng.normal(0, 1, days), base + rng.normal(0, 1, days)])
    values[1, -1] *= 6  # a runaway on the last day
    res = batch.evaluate(values, spend=1.0, limit=1000.0, detectors=["seasonal"], granularity="day")
    seasonal = next(e for e in res.evidence(1) if e.rule == "seasonal")
    direct = detectors.detect("seasonal", values, None, None, granularity="day")
    assert seasonal.fired is True
    assert seasonal.observed == float(direct.observed[1])
    assert seasonal.expected == float(direct.expected[1])
    assert [e.fired for e in res.evidence(0) if e.rule == "seasonal"] == [bool(direct.fired[0])]
    disabled = batch.evaluate(
        values,
        spend=1.0,
        limit=1000.0,
        detectors=["seasonal"],
        detector_params={"seasonal": detectors.SeasonalSettings(enabled=False)},
    )
    assert "seasonal" not in disabled.detectors
    with pytest.raises(InputError, match="unknown detector 'nope'"):
        batch.evaluate(values, spend=1.0, limit=1000.0, detectors=["nope"])


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_bar_does_not_change_results(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 1)
    seen: list[int] = []
    values, lengths = quick_matrix()
    _kernels.run_chunks(
        values,
        lengths,
        lambda sl, c: None,
        mean=True,
        ordered=True,
        workers=workers,
        progress=seen.append,
    )
    assert seen[-1] == 3
    assert seen == sorted(seen)
    a, b = run_quick(workers=workers), run_quick(progress=True, workers=workers)
    assert a.policy.code.tolist() == b.policy.code.tolist()
    assert a.robust_mad.threshold.tolist() == b.robust_mad.threshold.tolist()


def test_params_from_the_policy_detector_settings() -> None:
    from cloudcircuit.policy import DetectorSettings

    settings = DetectorSettings.model_validate(
        {
            "spike": {"multiplier": 2.0, "min_baseline": 5.0, "action": "block"},
            "robust": {"enabled": True, "method": "percentile", "percentile": 0.9},
            "burn_rate": {"enabled": False, "hot_multiplier": 1.8},
        }
    )
    params = batch.GuardrailParams.from_settings(settings, warning_ratio=0.8, failure_threshold=2)
    assert (params.spike_multiplier, params.min_baseline, params.spike_action) == (
        2.0,
        5.0,
        "block",
    )
    assert (params.robust_method, params.percentile, params.robust_enabled) == (
        "percentile",
        0.9,
        True,
    )
    assert (params.burn_rate_enabled, params.hot_multiplier) == (False, 1.8)
    assert (params.warning_ratio, params.failure_threshold) == (0.8, 2)
    res = run_quick(params=params)
    rules = {e.rule: e for e in res.evidence(0)}
    assert "burn_rate" not in rules
    assert rules["spike"].threshold == cc.check_anomaly_spike(QUICK, 2.0, 5.0).threshold
    assert (
        rules["robust"].threshold
        == cc.check_anomaly_robust(QUICK, method="percentile", percentile=0.9).threshold
    )
    assert res.breaker.is_open.tolist() == [False, False, True]


def test_results_are_read_only_and_inputs_are_not() -> None:
    spend = np.array([920.0, 100.0, 1200.0])
    fails = np.array([0, 0, 3])
    res = run_quick(spend=spend, consecutive_failures=fails)
    for arr in (
        res.spike.threshold,
        res.robust_mad.is_spike,
        res.burn_rate.burn_rate_ratio,
        res.budget.usage_ratio,
        res.policy.code,
        res.policy.action,
        res.breaker.retry_after_steps,
        res.lengths,
    ):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = arr[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.spike = res.burn_rate  # type: ignore[misc]
    spend[0] = 1.0  # the caller's arrays stay writable and are not aliased
    fails[0] = 1
    assert res.budget.current_spend[0] == 920.0
    assert res.consecutive_failures[0] == 0


@pytest.mark.parametrize(
    "module",
    [
        "cloudcircuit.batch",
        "cloudcircuit.batch.engine",
        "cloudcircuit.batch.results",
        "cloudcircuit.batch.rules",
    ],
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    names = list(mod.__all__)
    kind = [(1 if n.isupper() else 2 if n[0].isupper() else 3, n) for n in names]
    assert kind == sorted(kind)
    assert all(hasattr(mod, n) for n in names)


def test_a_detector_may_call_the_batch_engine_from_a_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nested calls run inline in the worker thread instead of waiting on the shared pool."""
    monkeypatch.setattr(_kernels, "CHUNK_CELLS", 1)
    monkeypatch.setattr(_kernels, "MIN_CHUNK_ROWS", 2)

    class Nested:
        name = "nested"

        def __call__(self, values: np.ndarray, lengths: np.ndarray) -> batch.DetectorArrays:
            inner = batch.check_burn_rate(values, lengths=lengths, hot_multiplier=1.1)
            return batch.DetectorArrays(
                fired=inner.is_hot,
                observed=inner.burn_rate_ratio,
                threshold=np.full(len(lengths), 1.1),
                expected=inner.average_spend,
                score=inner.burn_rate_ratio,
            )

    values = np.tile(np.array([[1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]]), (8, 1))
    res = batch.evaluate(values, spend=1.0, limit=2.0, detectors=[Nested()], workers=2)
    assert [res.evidence(i)[-1].fired for i in range(4)] == [True, False, True, False]


def test_any_memory_layout_and_integer_input() -> None:
    rng = np.random.default_rng(3)
    values = np.round(rng.gamma(2.0, 50.0, size=(50, 12)), 2)
    ref = batch.check_anomaly_robust(values)
    for variant in (np.asfortranarray(values), np.hstack([values, values])[:, :12]):
        got = batch.check_anomaly_robust(variant)
        np.testing.assert_array_equal(got.threshold, ref.threshold)
    strided = batch.check_anomaly_spike(values[::2])
    assert strided.row(3) == cc.check_anomaly_spike(values[6].tolist())
    cents = (values * 100).astype(np.int64)
    ints = batch.check_anomaly_robust(cents, method="percentile")
    assert ints.row(7) == cc.check_anomaly_robust(cents[7].tolist(), method="percentile")
