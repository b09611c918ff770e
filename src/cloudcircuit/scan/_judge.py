"""Judging one budget's series: every rule reports :class:`~cloudcircuit.decision.Evidence`.

- spike, robust and single-window burn rate run on the batch engine over a left-aligned matrix
  of every series' last ``history + 1`` *complete* buckets (lengths per row), so the latest
  complete bucket is the one judged and a half-filled day cannot fire or hide anything;
- the budget check takes the period-to-date spend (partial bucket included: it is real spend);
- the forecast projects from the period's complete buckets only (``linear`` or ``run_rate``)
  and fires at ``breach_ratio`` of the amount;
- multi-window burn rates (:mod:`cloudcircuit.burn`) and named detectors
  (:mod:`cloudcircuit.detectors`) join when the policy enables them.

Each evidence carries the action its rule is configured to ask for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudcircuit.decision import Evidence
from cloudcircuit.scan._read import _BudgetRead, period_bounds
from cloudcircuit.spend import Granularity, SpendSeries, bucket_range

if TYPE_CHECKING:
    from cloudcircuit.policy import Budget, Policy


__all__ = [
    "_Judged",
    "_anomaly_evidence",
    "_burn_windows",
    "_detector_evidence",
    "_fmt",
    "_history_flags",
    "_judge_budget",
    "_period_evidence",
    "_windows",
]


# -- judging ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Judged:
    series: SpendSeries
    evidence: list[Evidence]
    period_spend: float
    forecast: float | None
    anomalies: tuple[int, ...]


def _windows(rows: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned ``(N, width)`` matrix of each row's last ``width`` points, and lengths."""
    matrix = np.zeros((len(rows), width), dtype=np.float64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        tail = row[-width:]
        matrix[i, : len(tail)] = tail
        lengths[i] = len(tail)
    return matrix, lengths


def _fmt(value: float) -> str:
    return f"{value:,.2f}"


def _rows_to_evidence(
    res: Any,
    usable: Sequence[int],
    out: list[list[Evidence]],
    *,
    rule: str,
    action: Any,
    with_score: bool,
    describe: Callable[[float, float, float], str],
) -> None:
    """Append one Evidence per judged row of a batch AnomalyArrays result to ``out``."""
    for j, i in enumerate(usable):
        latest = float(res.latest_spend[j])
        base = float(res.baseline_mean[j])
        thr = float(res.threshold[j])
        out[i].append(
            Evidence(
                rule=rule,
                fired=bool(res.is_spike[j]),
                observed=latest,
                threshold=thr,
                action=action,
                expected=base,
                score=latest / base if with_score and base > 0 else None,
                detail=describe(latest, base, thr),
            )
        )


def _anomaly_evidence(completed: Sequence[SpendSeries], settings: Any) -> list[list[Evidence]]:
    """Spike, robust and burn-rate rules over the latest complete bucket of every series."""
    from cloudcircuit import batch

    out: list[list[Evidence]] = [[] for _ in completed]
    width = settings.history + 1
    rows = [np.maximum(s.amounts, 0.0) for s in completed]
    usable = [i for i, r in enumerate(rows) if len(r) >= 2]
    for i, row in enumerate(rows):
        if len(row) < 2:
            out[i].append(
                Evidence(
                    rule="anomaly",
                    fired=False,
                    observed=float(row[-1]) if len(row) else 0.0,
                    threshold=0.0,
                    detail="fewer than 2 complete buckets: anomaly rules not evaluated",
                )
            )
    if not usable:
        return out
    matrix, lengths = _windows([rows[i] for i in usable], width)
    spike, robust, burn = settings.spike, settings.robust, settings.burn_rate
    if spike.enabled:
        res = batch.check_anomaly_spike(
            matrix,
            lengths=lengths,
            spike_multiplier=spike.multiplier,
            min_baseline=spike.min_baseline,
        )
        _rows_to_evidence(
            res,
            usable,
            out,
            rule="spike",
            action=spike.action,
            with_score=True,
            describe=lambda latest, base, thr: (
                f"latest complete bucket {_fmt(latest)} vs threshold {_fmt(thr)} "
                f"({spike.multiplier:g}x mean {_fmt(base)})"
            ),
        )
    if robust.enabled:
        res = batch.check_anomaly_robust(
            matrix,
            lengths=lengths,
            method=robust.method,
            z_threshold=robust.z_threshold,
            min_mad=robust.min_mad,
            percentile=robust.percentile,
            min_baseline=robust.min_baseline,
        )
        _rows_to_evidence(
            res,
            usable,
            out,
            rule="robust",
            action=robust.action,
            with_score=False,
            describe=lambda latest, loc, thr: (
                f"latest complete bucket {_fmt(latest)} vs {robust.method} threshold "
                f"{_fmt(thr)} (location {_fmt(loc)})"
            ),
        )
    if burn.enabled:
        hot = batch.check_burn_rate(matrix, lengths=lengths, hot_multiplier=burn.hot_multiplier)
        for j, i in enumerate(usable):
            ratio, avg = float(hot.burn_rate_ratio[j]), float(hot.average_spend[j])
            out[i].append(
                Evidence(
                    rule="burn_rate",
                    fired=bool(hot.is_hot[j]),
                    observed=ratio,
                    threshold=burn.hot_multiplier,
                    action=burn.action,
                    expected=avg,
                    detail=f"latest bucket burns {ratio:.2f}x the history mean {_fmt(avg)}",
                )
            )
    return out


def _history_flags(completed: SpendSeries, settings: Any) -> tuple[int, ...]:
    """Complete buckets the primary anomaly rule flags against their own preceding history
    (what the report marks); robust when enabled, else spike."""
    from cloudcircuit import batch

    values = np.maximum(completed.amounts, 0.0)
    n = len(values)
    if n < 3:
        return ()
    width = settings.history + 1
    rows = [values[max(0, t - width + 1) : t + 1] for t in range(1, n)]
    matrix, lengths = _windows(rows, width)
    robust, spike = settings.robust, settings.spike
    if robust.enabled:
        res = batch.check_anomaly_robust(
            matrix,
            lengths=lengths,
            method=robust.method,
            z_threshold=robust.z_threshold,
            min_mad=robust.min_mad,
            percentile=robust.percentile,
            min_baseline=robust.min_baseline,
        )
    elif spike.enabled:
        res = batch.check_anomaly_spike(
            matrix,
            lengths=lengths,
            spike_multiplier=spike.multiplier,
            min_baseline=spike.min_baseline,
        )
    else:
        return ()
    # a point needs a little history before it can be called an anomaly
    return tuple(int(t) + 1 for t in np.flatnonzero(res.is_spike) if t + 1 >= 3)


def _period_evidence(
    series: Sequence[SpendSeries], budget: Budget, settings: Any, now: datetime
) -> tuple[list[list[Evidence]], list[float], list[float | None]]:
    """The budget check on period-to-date spend and the end-of-period forecast."""
    from cloudcircuit import batch

    p_start, p_end = period_bounds(now, budget.period)
    n = len(series)
    spend = np.zeros(n, dtype=np.float64)
    out: list[list[Evidence]] = [[] for _ in series]
    forecasts: list[float | None] = [None] * n
    for i, s in enumerate(series):
        in_period = [j for j, start in enumerate(s.starts) if p_start <= start < p_end]
        spend[i] = max(0.0, math.fsum(float(s.amounts[j]) for j in in_period))
    res = batch.check_budget(spend, np.full(n, budget.amount), budget.warning_ratio)
    for i in range(n):
        used, ratio = float(res.current_spend[i]), float(res.usage_ratio[i])
        breached, warned = bool(res.is_breached[i]), bool(res.is_warning[i])
        out[i].append(
            Evidence(
                rule="budget",
                fired=breached or warned,
                observed=used,
                threshold=budget.amount if breached else budget.amount * budget.warning_ratio,
                action="block" if breached else "throttle",
                score=ratio,
                detail=f"{budget.period}-to-date {_fmt(used)} of {_fmt(budget.amount)} "
                f"({ratio:.0%}{', breached' if breached else ', warning' if warned else ''})",
                data={
                    "current_spend": used,
                    "budget_limit": budget.amount,
                    "usage_ratio": ratio,
                    "remaining_budget": float(res.remaining_budget[i]),
                    "period_start": p_start.isoformat(),
                },
            )
        )
    fc = settings.forecast
    if not fc.enabled:
        return out, spend.tolist(), forecasts
    for i, s in enumerate(series):
        gran = s.granularity
        total = len(bucket_range(p_start, p_end, gran))
        in_period = [j for j, start in enumerate(s.starts) if p_start <= start < p_end]
        elapsed = 0
        for j in in_period:
            if not s.complete[j]:
                break
            elapsed += 1
        if elapsed == 0:
            out[i].append(
                Evidence(
                    rule="forecast",
                    fired=False,
                    observed=0.0,
                    threshold=budget.amount,
                    action=fc.action,
                    detail=f"no complete {gran.value} in this {budget.period} yet",
                )
            )
            continue
        done = np.maximum(s.amounts[in_period[:elapsed]], 0.0)
        to_date = math.fsum(done.tolist())
        if fc.method == "linear":
            lin = batch.forecast_budget_breach(
                np.array([to_date]), np.array([budget.amount]), elapsed, total
            )
            projected = float(lin.projected_total_spend[0])
            how = f"{_fmt(to_date)} over {elapsed} of {total} {gran.value}s, linear"
        else:
            tail = np.maximum(s.completed().amounts[-fc.run_rate_buckets :], 0.0)
            rate = float(tail.mean()) if len(tail) else 0.0
            projected = to_date + rate * (total - elapsed)
            how = f"{_fmt(to_date)} + {_fmt(rate)}/{gran.value} x {total - elapsed} remaining"
        forecasts[i] = projected
        limit = budget.amount * float(getattr(fc, "breach_ratio", 1.0))
        out[i].append(
            Evidence(
                rule="forecast",
                fired=projected >= limit,
                observed=projected,
                threshold=limit,
                action=fc.action,
                expected=to_date,
                score=projected / budget.amount,
                detail=f"{budget.period} projected {_fmt(projected)} vs {_fmt(limit)} "
                f"({limit / budget.amount:.0%} of budget; {how})",
                data={"method": fc.method, "elapsed": elapsed, "total": total},
            )
        )
    return out, spend.tolist(), forecasts


def _detector_evidence(series: SpendSeries, budget: Budget, settings: Any) -> list[Evidence]:
    """Multi-window burn rates and the named detectors (seasonal, streaming) when configured."""
    out: list[Evidence] = []
    windows_cfg = getattr(settings, "burn_windows", None)
    if windows_cfg is not None and getattr(windows_cfg, "enabled", False):
        from cloudcircuit import burn

        windows = _burn_windows(windows_cfg, series.granularity, budget.period)
        out.extend(burn.evaluate_burn(series, budget.amount, budget.period, windows))
    for name in ("seasonal", "streaming"):
        cfg = getattr(settings, name, None)
        if cfg is None or not getattr(cfg, "enabled", False):
            continue
        from cloudcircuit import detectors

        done = series.completed()
        if len(done) < 2:
            continue
        evidence = detectors.evidence_for(name, done, cfg)
        out.append(replace(evidence, action=getattr(cfg, "action", evidence.action)))
    return out


def _burn_windows(cfg: Any, granularity: Granularity, period: str) -> list[Any]:
    from cloudcircuit import burn

    resolve = getattr(cfg, "resolve", None)
    if callable(resolve):
        return list(resolve(granularity, period))
    return list(burn.default_windows(granularity, period))


def _judge_budget(policy: Policy, read: _BudgetRead, now: datetime) -> list[_Judged]:
    budget = read.budget
    settings = policy.detectors_for(budget)
    series = read.series
    completed = [s.completed() for s in series]
    anomaly = _anomaly_evidence(completed, settings)
    period, spend, forecasts = _period_evidence(series, budget, settings, now)
    judged: list[_Judged] = []
    for i, s in enumerate(series):
        evidence = [*period[i], *anomaly[i], *_detector_evidence(s, budget, settings)]
        judged.append(
            _Judged(
                series=s,
                evidence=evidence,
                period_spend=spend[i],
                forecast=forecasts[i],
                anomalies=_history_flags(completed[i], settings),
            )
        )
    return judged
