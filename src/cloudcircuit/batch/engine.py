"""``evaluate``: every guardrail over every row in one pass, and evidence for any row."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from cloudcircuit.batch._kernels import Chunk, lengths_of, matrix, run_chunks
from cloudcircuit.batch.results import (
    AnomalyArrays,
    BatchDetector,
    BreakerArrays,
    BudgetArrays,
    BurnRateArrays,
    DetectorArrays,
    FloatArray,
    ForecastArrays,
    GuardrailParams,
    IntArray,
    PolicyArrays,
    frozen,
)
from cloudcircuit.batch.rules import (
    check_budget,
    empty_anomaly,
    evaluate_circuit_breaker,
    evaluate_spend_policy,
    fill_burn,
    fill_mad,
    fill_percentile,
    fill_spike,
    forecast_budget_breach,
    hot_param,
    robust_params,
    spike_params,
)
from cloudcircuit.decision import Evidence
from cloudcircuit.errors import InputError
from cloudcircuit.guardrails import SpendAction

__all__ = ["BatchResult", "evaluate", "stack_rows"]


# -- everything at once -------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:,.6g}"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Every guardrail for N rows; :meth:`evidence` explains one row with decision Evidence."""

    params: GuardrailParams
    lengths: IntArray
    budget: BudgetArrays
    spike: AnomalyArrays
    robust_mad: AnomalyArrays
    robust_percentile: AnomalyArrays
    burn_rate: BurnRateArrays
    forecast: ForecastArrays | None
    breaker: BreakerArrays
    consecutive_failures: IntArray
    failure_threshold: IntArray
    policy: PolicyArrays
    detectors: Mapping[str, tuple[SpendAction, DetectorArrays]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def robust(self) -> AnomalyArrays:
        """The robust result of the configured method (``params.robust_method``)."""
        return self.robust_mad if self.params.robust_method == "mad" else self.robust_percentile

    def evidence(self, i: int) -> list[Evidence]:
        """Row ``i``'s evidence: budget, spike, robust, burn_rate, forecast, breaker, extras."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)} rows")
        p = self.params
        out = [self._budget_evidence(i)]
        if p.spike_enabled:
            out.append(self._anomaly_evidence("spike", self.spike, i, p.spike_action, {}))
        if p.robust_enabled:
            data = {"method": p.robust_method}
            out.append(self._anomaly_evidence("robust", self.robust, i, p.robust_action, data))
        if p.burn_rate_enabled:
            b = self.burn_rate.row(i)
            out.append(
                Evidence(
                    rule="burn_rate",
                    fired=b.is_hot,
                    observed=b.burn_rate_ratio,
                    threshold=float(p.hot_multiplier),
                    action=p.burn_rate_action,
                    expected=b.average_spend,
                    score=b.burn_rate_ratio,
                    detail=f"latest {_g(b.latest_spend)} is {_g(b.burn_rate_ratio)}x the "
                    f"average {_g(b.average_spend)} (hot at {_g(p.hot_multiplier)}x)",
                    data={"latest_spend": b.latest_spend, "average_spend": b.average_spend},
                )
            )
        if self.forecast is not None and p.forecast_enabled:
            f = self.forecast.row(i)
            out.append(
                Evidence(
                    rule="forecast",
                    fired=f.will_breach,
                    observed=f.projected_total_spend,
                    threshold=f.budget_limit,
                    action=p.forecast_action,
                    expected=f.projected_total_spend,
                    detail=f"projected {_g(f.projected_total_spend)} against budget "
                    f"{_g(f.budget_limit)} after {f.periods_elapsed} of {f.total_periods} periods",
                    data={
                        "projected_overrun": f.projected_overrun,
                        "periods_elapsed": f.periods_elapsed,
                        "total_periods": f.total_periods,
                    },
                )
            )
        k = self.breaker.row(i)
        fails, limit = int(self.consecutive_failures[i]), int(self.failure_threshold[i])
        out.append(
            Evidence(
                rule="breaker",
                fired=k.is_open,
                observed=float(fails),
                threshold=float(limit),
                action="block",
                detail=(
                    f"circuit breaker open ({fails} consecutive failures, threshold {limit}, "
                    f"retry after {k.retry_after_steps} steps)"
                    if k.is_open
                    else f"circuit breaker closed ({fails} consecutive failures, threshold {limit})"
                ),
                data={"retry_after_steps": k.retry_after_steps},
            )
        )
        for name, (action, arrays) in self.detectors.items():
            out.append(
                Evidence(
                    rule=name,
                    fired=bool(arrays.fired[i]),
                    observed=float(arrays.observed[i]),
                    threshold=float(arrays.threshold[i]),
                    action=action,
                    expected=float(arrays.expected[i]),
                    score=float(arrays.score[i]),
                )
            )
        return out

    def _budget_evidence(self, i: int) -> Evidence:
        b = self.budget.row(i)
        ratio = float(self.params.warning_ratio)
        threshold = b.budget_limit if b.is_breached else b.budget_limit * ratio
        state = "breached" if b.is_breached else "at warning" if b.is_warning else "within"
        return Evidence(
            rule="budget",
            fired=b.is_warning or b.is_breached,
            observed=b.current_spend,
            threshold=threshold,
            action="block" if b.is_breached else "throttle",
            score=b.usage_ratio,
            detail=f"spend {_g(b.current_spend)} of budget {_g(b.budget_limit)} "
            f"({b.usage_ratio:.1%}, warning at {ratio:.0%}): {state}",
            data={
                "budget_limit": b.budget_limit,
                "usage_ratio": b.usage_ratio,
                "remaining_budget": b.remaining_budget,
                "warning_ratio": ratio,
            },
        )

    @staticmethod
    def _anomaly_evidence(
        rule: str, arrays: AnomalyArrays, i: int, action: SpendAction, data: dict[str, Any]
    ) -> Evidence:
        a = arrays.row(i)
        verb = ">" if a.is_spike else "<="
        return Evidence(
            rule=rule,
            fired=a.is_spike,
            observed=a.latest_spend,
            threshold=a.threshold,
            action=action,
            expected=a.baseline_mean,
            detail=f"latest {_g(a.latest_spend)} {verb} threshold {_g(a.threshold)} "
            f"(baseline {_g(a.baseline_mean)})",
            data={"baseline": a.baseline_mean, **data},
        )


def _resolve_detector(
    spec: str | BatchDetector, params: Mapping[str, Any], granularity: str | None
) -> tuple[str, SpendAction, Callable[[FloatArray, IntArray], Any]] | None:
    """(name, action, run) for one extra detector; None when its settings disable it."""
    if not isinstance(spec, str):
        return spec.name, cast(SpendAction, getattr(spec, "action", "throttle")), spec
    try:
        registry = importlib.import_module("cloudcircuit.detectors")
    except ImportError as exc:
        raise InputError(f"detector {spec!r}: cloudcircuit.detectors is not available") from exc
    known: Mapping[str, Any] = getattr(registry, "DETECTORS", {})
    if spec not in known:
        raise InputError(f"unknown detector {spec!r}; known: {', '.join(sorted(known))}")
    settings = params.get(spec)
    if settings is None:
        settings = known[spec]()
    if not getattr(settings, "enabled", True):
        return None
    action = cast(SpendAction, getattr(settings, "action", "throttle"))

    def run(values: FloatArray, lengths: IntArray) -> Any:
        return registry.detect(spec, values, lengths, settings, granularity=granularity)

    return spec, action, run


def _detector_store(n: int) -> DetectorArrays:
    return DetectorArrays(
        fired=np.zeros(n, dtype=bool),
        observed=np.full(n, np.nan),
        threshold=np.full(n, np.nan),
        expected=np.full(n, np.nan),
        score=np.full(n, np.nan),
    )


def _store_detector(out: DetectorArrays, sl: slice, result: Any, name: str) -> None:
    for attr in ("fired", "observed", "threshold", "expected", "score"):
        value = getattr(result, attr, None)
        if value is None:
            if attr == "threshold":
                continue
            raise InputError(f"detector {name!r} returned no {attr!r}")
        target = getattr(out, attr)
        part = np.asarray(value)
        if part.shape != target[sl].shape:
            raise InputError(
                f"detector {name!r}: {attr} has shape {part.shape}, expected {target[sl].shape}"
            )
        target[sl] = part


def evaluate(
    values: npt.ArrayLike,
    *,
    spend: npt.ArrayLike,
    limit: npt.ArrayLike,
    lengths: npt.ArrayLike | None = None,
    periods_elapsed: npt.ArrayLike | None = None,
    total_periods: npt.ArrayLike | None = None,
    consecutive_failures: npt.ArrayLike = 0,
    cooldown_steps_remaining: npt.ArrayLike = 0,
    params: GuardrailParams | None = None,
    detectors: Sequence[str | BatchDetector] = (),
    detector_params: Mapping[str, Any] | None = None,
    granularity: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> BatchResult:
    """Every guardrail over every row in one pass over the data.

    ``values`` (N, T) with ``lengths`` feed spike, robust (MAD and percentile) and burn rate;
    ``spend`` and ``limit`` (scalars or (N,)) feed budget and, given ``periods_elapsed`` and
    ``total_periods``, the forecast; ``consecutive_failures`` and ``cooldown_steps_remaining``
    feed the breaker. ``detectors`` adds extra rules: names looked up in
    :mod:`cloudcircuit.detectors` (``detect(name, values, lengths, detector_params[name])``)
    or :class:`BatchDetector` callables; each runs per chunk and adds one evidence item
    (``granularity`` picks their default season: day 7, hour 24, month 12). Chunks of rows
    run on ``workers`` threads (default: one per core, up to 4; a matrix of one chunk, about
    5,800 rows of 90 points, runs on the calling thread), so detectors must be pure.
    """
    p = params or GuardrailParams()
    x = matrix(values)
    n_rows, n_cols = x.shape
    lens = lengths_of(lengths, n_rows, n_cols)
    budget = check_budget(spend, limit, p.warning_ratio, n=n_rows)
    forecast = None
    if periods_elapsed is not None or total_periods is not None:
        if periods_elapsed is None or total_periods is None:
            raise InputError("forecast needs both periods_elapsed and total_periods")
        forecast = forecast_budget_breach(spend, limit, periods_elapsed, total_periods, n=n_rows)
    breaker = evaluate_circuit_breaker(
        consecutive_failures, p.failure_threshold, cooldown_steps_remaining, n=n_rows
    )
    s_mult, s_floor = spike_params(p.spike_multiplier, p.min_baseline, n_rows)
    if p.robust_method not in ("mad", "percentile"):
        raise InputError(f"robust_method must be 'mad' or 'percentile', got {p.robust_method!r}")
    # both robust methods are computed, so both parameter sets must be valid
    z, mm, pct, r_floor = robust_params(
        "mad", p.z_threshold, p.min_mad, p.percentile, p.robust_min_baseline, n_rows
    )
    robust_params(
        "percentile", p.z_threshold, p.min_mad, p.percentile, p.robust_min_baseline, n_rows
    )
    hot = hot_param(p.hot_multiplier, n_rows)
    resolved = [_resolve_detector(d, detector_params or {}, granularity) for d in detectors]
    extra = [r for r in resolved if r is not None]
    names = [name for name, _, _ in extra]
    if len(set(names)) != len(names) or set(names) & _RULES:
        raise InputError(
            f"detector names must be unique and not clash with {sorted(_RULES)}: {names}"
        )

    spike, mad, perc = empty_anomaly(n_rows), empty_anomaly(n_rows), empty_anomaly(n_rows)
    burn = BurnRateArrays(
        np.empty(n_rows), np.empty(n_rows), np.empty(n_rows), np.empty(n_rows, dtype=bool)
    )
    stores = {name: _detector_store(n_rows) for name in names}

    def work(sl: slice, c: Chunk) -> None:
        fill_spike(spike, sl, c, s_mult, s_floor)
        fill_burn(burn, sl, c, hot)
        fill_mad(mad, sl, c, z, mm, r_floor)
        fill_percentile(perc, sl, c, pct, r_floor)
        for name, _, run in extra:
            assert c.raw is not None
            _store_detector(stores[name], sl, run(c.raw, lens[sl]), name)

    with _progress(n_rows, progress) as tick:
        run_chunks(
            x, lens, work, mean=True, ordered=True, raw=bool(extra), workers=workers, progress=tick
        )
    anomaly = spike if p.policy_anomaly == "spike" else (mad if p.robust_method == "mad" else perc)
    return frozen(
        BatchResult(
            params=p,
            lengths=lens,
            budget=budget,
            spike=spike,
            robust_mad=mad,
            robust_percentile=perc,
            burn_rate=burn,
            forecast=forecast,
            breaker=breaker,
            consecutive_failures=np.broadcast_to(consecutive_failures, (n_rows,)).astype(np.int64),
            failure_threshold=np.broadcast_to(
                np.asarray(p.failure_threshold, dtype=np.int64), (n_rows,)
            ),
            policy=evaluate_spend_policy(budget, anomaly, breaker),
            detectors={name: (action, stores[name]) for name, action, _ in extra},
        )
    )


_RULES = frozenset({"budget", "spike", "robust", "burn_rate", "forecast", "breaker"})


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress bar over rows (transient), or nothing."""
    if not show:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("guardrails", total=total)
        yield lambda done: bar.update(task, completed=done)


def stack_rows(
    rows: Sequence[Sequence[float] | npt.ArrayLike], *, dtype: npt.DTypeLike = np.float64
) -> tuple[npt.NDArray[Any], IntArray]:
    """Ragged series -> left-aligned ``(values, lengths)`` for the functions above (pad 0)."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))  # type: ignore[arg-type]
    width = int(lens.max(initial=0))
    out = np.zeros((len(rows), width), dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : lens[i]] = np.asarray(row, dtype=dtype)
    return out, lens
