"""One scan: sources -> series -> guardrails and detectors -> decisions -> alerts -> enforcement.

The order is what keeps a failed scan from leaving anything half-written:

1. **read** every budget's series from every source (no state is written while reading);
2. **judge** each series: the batch guardrails over all series of a budget at once, the
   multi-window burn rates and the configured detectors, each producing
   :class:`~cloudcircuit.decision.Evidence` that carries the action the policy maps it to;
3. **breaker**: fold the scan's health (a failed read, or data more incomplete than the settle
   window explains) into the persisted circuit breaker in one transaction; while it is open,
   ``fail_closed`` budgets decide block with the breaker as evidence;
4. **alert** on every non-allow decision (de-duplicated through the state store);
5. **plan** the throttle/block actions of budgets that have them, with the safety rails checked
   before anything runs, and **execute** it, dry-run unless ``enforce`` is given; the
   enforcement module journals before and after each action.

An unexpected exception while reading still counts one breaker failure and then propagates;
nothing after the read phase has run, so the journal holds nothing of this run.

Anomaly rules judge the latest *complete* bucket (late cost data must not read as a drop or a
spike); the budget check uses the period-to-date spend (calendar UTC day or month) including
the partial bucket; the forecast projects from the complete buckets of the period.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cloudcircuit.decision import Decision, Evidence, combine, worst_action
from cloudcircuit.errors import (
    CloudCircuitError,
    ConfigError,
    CurrencyMismatchError,
    EnforcementError,
    InputError,
    ProviderError,
    ProviderNotInstalledError,
    SafetyLimitError,
)
from cloudcircuit.guardrails import SpendAction
from cloudcircuit.providers import (
    ActionOutcome,
    Enforcer,
    SourceStats,
    SpendQuery,
    SpendSource,
    StateStore,
    load_provider,
)
from cloudcircuit.spend import Granularity, SpendSeries, bucket_range, scope_key, to_utc

if TYPE_CHECKING:
    from rich.console import Console

    from cloudcircuit.enforcement import Plan
    from cloudcircuit.policy import Budget, Policy

__all__ = [
    "BREAKER_NAME",
    "PendingAction",
    "ScanError",
    "ScanResult",
    "ScopeResult",
    "period_bounds",
    "run_scan",
]

#: the state-store name of the scan circuit breaker
BREAKER_NAME = "scan"

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


def period_bounds(now: datetime, period: str) -> tuple[datetime, datetime]:
    """Calendar UTC bounds ``[start, end)`` of the day or month holding ``now``."""
    gran = Granularity.DAY if period == "day" else Granularity.MONTH
    start = gran.floor(now)
    return start, gran.next(start)


class _Progress:
    """Rich progress on stderr while a person waits; a no-op when disabled."""

    def __init__(self, enabled: bool, console: Console | None, total: int) -> None:
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console or RichConsole(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("scanning", total=total)

    @contextlib.contextmanager
    def running(self) -> Iterator[_Progress]:
        if self._progress is None:
            yield self
            return
        with self._progress:
            yield self

    def step(self, description: str, advance: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description, advance=advance)


# -- reading ------------------------------------------------------------------------------


@dataclass(slots=True)
class _BudgetRead:
    budget: Budget
    series: list[SpendSeries]
    failed: list[ScanError]
    incomplete: list[str]
    #: failures of sources that already failed for an earlier budget of this scan
    unavailable: list[ScanError] = field(default_factory=list)


def _open_sources(policy: Policy, now: datetime) -> tuple[dict[str, SpendSource], list[ScanError]]:
    from cloudcircuit.sources import open_source

    opened: dict[str, SpendSource] = {}
    errors: list[ScanError] = []
    for config in policy.sources:
        try:
            opened[config.name] = open_source(
                config, now=now, settle_hours=policy.defaults.settle_hours
            )
        except CloudCircuitError as exc:
            kind: ErrorKind = "input" if isinstance(exc, InputError) else "source"
            errors.append(ScanError(kind, f"source {config.name!r}: {exc}", source=config.name))
    return opened, errors


def _as_source_map(
    sources: Mapping[str, SpendSource] | Sequence[SpendSource],
) -> dict[str, SpendSource]:
    if isinstance(sources, Mapping):
        return dict(sources)
    return {getattr(s, "name", f"source{i}"): s for i, s in enumerate(sources)}


def _query_for(policy: Policy, budget: Budget, now: datetime) -> SpendQuery:
    gran = policy.defaults.granularity
    if budget.period == "day" and gran is Granularity.MONTH:
        raise ConfigError(
            [
                (
                    f"budgets[{policy.budgets.index(budget)}].period",
                    "a 'day' budget needs defaults.granularity 'hour' or 'day', not 'month'",
                )
            ]
        )
    p_start, _ = period_bounds(now, budget.period)
    start = gran.floor(min(now - timedelta(days=policy.defaults.lookback_days), p_start))
    return SpendQuery(
        start=start,
        end=gran.next(gran.floor(now)),
        granularity=gran,
        cost_basis=policy.defaults.cost_basis,
        group_by=tuple(budget.group_by),
        filters=budget.scope.to_filters(),
    )


def _settle(series: SpendSeries, now: datetime, settle_hours: float) -> SpendSeries:
    """Drop buckets that start at or after ``now``; mark those still settling incomplete."""
    keep = sum(1 for s in series.starts if s < now)
    cut = series.slice(0, keep)
    cutoff = now - timedelta(hours=settle_hours)
    ends = [cut.granularity.next(s) for s in cut.starts]
    settled = np.array([e <= cutoff for e in ends], dtype=np.bool_)
    return replace(cut, complete=cut.complete & settled) if len(cut) else cut


def _merge(series: list[SpendSeries]) -> list[SpendSeries]:
    """Sum series of the same scope read from several sources (same buckets, same currency)."""
    by_key: dict[str, SpendSeries] = {}
    for s in series:
        seen = by_key.get(s.key)
        if seen is None:
            by_key[s.key] = s
            continue
        if seen.currency != s.currency:
            raise CurrencyMismatchError(
                f"two currencies in scope {s.key}: {seen.currency} and {s.currency}"
            )
        if seen.starts != s.starts:
            raise InputError(f"scope {s.key}: sources returned different buckets")
        by_key[s.key] = replace(
            seen, amounts=seen.amounts + s.amounts, complete=seen.complete & s.complete
        )
    return list(by_key.values())


def _staleness(series: SpendSeries, now: datetime, settle_hours: float) -> str | None:
    """Why the series is more incomplete than the settle window explains, or None."""
    done = series.completed()
    if len(done) == 0:
        return f"{series.key}: no complete bucket to judge"
    gran = series.granularity
    lag = timedelta(hours=settle_hours) + timedelta(seconds=max(gran.seconds, settle_hours * 3600))
    end = done.end
    assert end is not None
    if end < gran.floor(now - lag):
        return f"{series.key}: newest complete bucket ends {end.isoformat()}, data is late"
    return None


def _read_budget(
    policy: Policy,
    budget: Budget,
    sources: Mapping[str, SpendSource],
    now: datetime,
    stats: dict[str, SourceStats],
    progress: _Progress,
    broken: dict[str, ScanError],
) -> _BudgetRead:
    """Read one budget from every source; a source that failed once in this scan is not asked
    again (an outage would only cost retries), its first error stands for it."""
    query = _query_for(policy, budget, now)
    found: list[SpendSeries] = []
    failed: list[ScanError] = []
    unavailable: list[ScanError] = []
    for name, source in sources.items():
        progress.step(f"reading {name} for {budget.name}")
        if name in broken:
            unavailable.append(broken[name])
            continue
        try:
            result = source.fetch(query)
        except CloudCircuitError as exc:
            kind: ErrorKind = "input" if isinstance(exc, InputError) else "source"
            error = ScanError(kind, f"{name}: {exc}", budget=budget.name, source=name)
            failed.append(error)
            broken[name] = error
            continue
        _add_stats(stats, name, result.stats)
        found.extend(
            s
            for s in (_settle(s, now, policy.defaults.settle_hours) for s in result.series)
            if len(s)
        )
    merged = _merge(found)
    currency = policy.currency_for(budget)
    for s in merged:
        if s.currency != currency:
            raise CurrencyMismatchError(
                f"budget {budget.name!r} is in {currency} but scope {s.key} spends {s.currency}"
            )
    incomplete = [why for s in merged if (why := _staleness(s, now, policy.defaults.settle_hours))]
    return _BudgetRead(budget, merged, failed, incomplete, unavailable)


def _add_stats(stats: dict[str, SourceStats], name: str, new: SourceStats) -> None:
    seen = stats.get(name)
    if seen is None:
        stats[name] = replace(new, source=new.source or name, notes=list(new.notes))
        return
    seen.requests += new.requests
    seen.api_cost_usd += new.api_cost_usd
    seen.bytes_processed += new.bytes_processed
    seen.rows_read += new.rows_read
    seen.cached_buckets += new.cached_buckets
    if new.freshness is not None and (seen.freshness is None or new.freshness > seen.freshness):
        seen.freshness = new.freshness
    seen.notes.extend(n for n in new.notes if n not in seen.notes)


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
        for j, i in enumerate(usable):
            latest, base, thr = (
                float(res.latest_spend[j]),
                float(res.baseline_mean[j]),
                float(res.threshold[j]),
            )
            out[i].append(
                Evidence(
                    rule="spike",
                    fired=bool(res.is_spike[j]),
                    observed=latest,
                    threshold=thr,
                    action=spike.action,
                    expected=base,
                    score=latest / base if base > 0 else None,
                    detail=f"latest complete bucket {_fmt(latest)} vs threshold {_fmt(thr)} "
                    f"({spike.multiplier:g}x mean {_fmt(base)})",
                )
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
        for j, i in enumerate(usable):
            latest, loc, thr = (
                float(res.latest_spend[j]),
                float(res.baseline_mean[j]),
                float(res.threshold[j]),
            )
            out[i].append(
                Evidence(
                    rule="robust",
                    fired=bool(res.is_spike[j]),
                    observed=latest,
                    threshold=thr,
                    action=robust.action,
                    expected=loc,
                    detail=f"latest complete bucket {_fmt(latest)} vs {robust.method} threshold "
                    f"{_fmt(thr)} (location {_fmt(loc)})",
                )
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


def _judge(policy: Policy, read: _BudgetRead, now: datetime) -> list[_Judged]:
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


# -- deciding -----------------------------------------------------------------------------


def _selector_scope(budget: Budget) -> dict[str, str]:
    """The budget's selector as a flat scope (``|`` between alternatives) for display."""
    return {dim: "|".join(values) for dim, values in budget.scope.to_filters().items()}


def _breaker_evidence(policy: Policy, state: Any) -> Evidence:
    from cloudcircuit.state import breaker_evidence

    return breaker_evidence(
        state, failure_threshold=policy.breaker.failure_threshold, action="block"
    )


def _decide(
    policy: Policy,
    read: _BudgetRead,
    judged: list[_Judged],
    breaker: Any,
    now: datetime,
    unopened: Sequence[ScanError] = (),
) -> tuple[list[Decision], list[ScopeResult]]:
    budget = read.budget
    extra = [_breaker_evidence(policy, breaker)] if budget.fail_closed else []
    base_scope = _selector_scope(budget)
    p_start, p_end = period_bounds(now, budget.period)
    decisions: list[Decision] = []
    scopes: list[ScopeResult] = []
    for j in judged:
        scope = {**base_scope, **j.series.scope}
        decision = combine(budget.name, scope, [*j.evidence, *extra])
        decisions.append(decision)
        scopes.append(
            ScopeResult(
                budget=budget.name,
                scope=scope,
                series=j.series,
                decision=decision,
                period=budget.period,
                period_start=p_start,
                period_end=p_end,
                amount=budget.amount,
                period_spend=j.period_spend,
                forecast=j.forecast,
                anomalies=j.anomalies,
                warning_ratio=budget.warning_ratio,
            )
        )
    if not judged:
        if read.failed or read.unavailable or unopened:
            why = "; ".join(e.message for e in (*unopened, *read.unavailable, *read.failed))
            data = Evidence(rule="data", fired=False, observed=0.0, threshold=0.0, detail=why)
            fallback = f"spend could not be read ({why}); fail-open"
        else:
            data = Evidence(
                rule="data",
                fired=False,
                observed=0.0,
                threshold=0.0,
                detail="no spend matched the scope",
            )
            fallback = "no spend matched the scope"
        decision = combine(budget.name, base_scope, [data, *extra])
        if decision.action == "allow":
            decision = replace(decision, reason=fallback)
        decisions.append(decision)
    return decisions, scopes


def _alert(
    policy: Policy, decisions: Sequence[Decision], store: StateStore, run_id: str
) -> tuple[Any | None, list[ScanError]]:
    """Dispatch every decision: sinks send throttle/block at or above their min_severity, and
    an allow clears what a sink that resolves incidents (PagerDuty) still has open."""
    if not policy.alerts or not decisions:
        return None, []
    from cloudcircuit import alerts

    try:
        sinks = alerts.build_sinks(list(policy.alerts))
        items = [
            alerts.Alert.from_decision(
                d, service=d.budget, environment=scope_key(d.scope), run_id=run_id
            )
            for d in decisions
        ]
        report = alerts.dispatch(items, sinks, store)
    except CloudCircuitError as exc:
        return None, [ScanError("alerts", f"alerts: {exc}")]
    errors = [
        ScanError("alerts", f"alert to {sink} for {alert.budget} failed: {reason}")
        for sink, alert, reason in report.failed
    ]
    return report, errors


def _enforcers(
    policy: Policy, providers: Sequence[str], given: Mapping[str, Enforcer] | None
) -> tuple[dict[str, Enforcer], dict[str, tuple[str, str | None]]]:
    """Load the enforcer of each provider; missing ones -> (reason, package to install)."""
    if given is not None:
        missing = {p: (f"no enforcer given for provider {p!r}", None) for p in providers}
        return {p: given[p] for p in providers if p in given}, {
            p: why for p, why in missing.items() if p not in given
        }
    loaded: dict[str, Enforcer] = {}
    missing_: dict[str, tuple[str, str | None]] = {}
    for name in providers:
        settings = next((s.settings for s in policy.sources if s.type == name), {})
        try:
            loaded[name] = load_provider(name).enforcer(settings)
        except ProviderNotInstalledError as exc:
            missing_[name] = (str(exc), exc.package)
        except CloudCircuitError as exc:
            missing_[name] = (f"enforcer for {name!r} unavailable: {exc}", None)
    return loaded, missing_


class _Watched:
    """An enforcer whose non-fatal resolve problems (an adapter's ``resolve_errors``: a region
    or account it could not list) are collected across every ``resolve`` call of a plan."""

    def __init__(self, inner: Enforcer) -> None:
        self._inner = inner
        self.provider = inner.provider
        self.problems: list[str] = []

    def resolve(self, selector: Any) -> list[Any]:
        found = self._inner.resolve(selector)
        for problem in getattr(self._inner, "resolve_errors", None) or []:
            if str(problem) not in self.problems:
                self.problems.append(str(problem))
        return found

    def capture(self, resource: Any) -> dict[str, Any]:
        return self._inner.capture(resource)

    def apply(self, action: str, resource: Any, params: Any, *, dry_run: bool) -> ActionOutcome:
        return self._inner.apply(action, resource, params, dry_run=dry_run)

    def restore(self, resource: Any, before: Any) -> ActionOutcome:
        return self._inner.restore(resource, before)

    def __getattr__(self, name: str) -> Any:
        # batch capture/apply and anything else the adapter offers
        return getattr(self._inner, name)


def _enforce(
    policy: Policy,
    decisions: Sequence[Decision],
    store: StateStore,
    run_id: str,
    *,
    enforce: bool,
    enforcers: Mapping[str, Enforcer] | None,
) -> tuple[Plan | None, list[PendingAction], list[ActionOutcome], list[ScanError]]:
    from cloudcircuit.enforcement import build_plan, execute_plan

    requests: list[tuple[Any, Decision]] = []
    for d in decisions:
        if d.action == "allow":
            continue
        budget = policy.budget(d.budget)
        requests.extend((spec, d) for spec in budget.actions(d.action))
    if not requests:
        return None, [], [], []
    loaded, missing = _enforcers(policy, sorted({s.provider for s, _ in requests}), enforcers)
    pending = [
        PendingAction(d.budget, d.action, s.action, s.provider, *missing[s.provider])
        for s, d in requests
        if s.provider in missing
    ]
    runnable = [(s, d) for s, d in requests if s.provider in loaded]
    if not runnable:
        return None, pending, [], []
    watched = {name: _Watched(e) for name, e in loaded.items()}
    try:
        plan = build_plan(
            runnable,
            watched,
            protect_tag=policy.enforcement.protect_tag,
            max_resources=policy.enforcement.max_resources,
            run_id=run_id,
        )
    except SafetyLimitError as exc:
        return None, pending, [], [ScanError("enforcement", str(exc))]
    except (ProviderError, EnforcementError) as exc:
        kind: ErrorKind = "provider" if isinstance(exc, ProviderError) else "enforcement"
        pending.extend(
            PendingAction(d.budget, d.action, s.action, s.provider, f"targets not resolved: {exc}")
            for s, d in runnable
        )
        return None, pending, [], [ScanError(kind, f"enforcement plan: {exc}")]
    errors: list[ScanError] = []
    for name, enforcer in watched.items():
        if not enforcer.problems:
            continue
        errors.append(
            ScanError(
                "provider", f"{name}: targets not fully listed: {'; '.join(enforcer.problems)}"
            )
        )
        causes = list(dict.fromkeys(p.rsplit(": ", 1)[-1] for p in enforcer.problems))
        why = f"targets could not be listed: {'; '.join(causes[:3])}"
        planned = {(a.budget, a.action) for a in plan.actions}
        pending.extend(
            PendingAction(d.budget, d.action, s.action, s.provider, why)
            for s, d in runnable
            if s.provider == name and (d.budget, s.action) not in planned
        )
    outcomes = execute_plan(plan, store, dry_run=not enforce)
    errors += [
        ScanError("enforcement", f"{o.action} {o.resource.type} {o.resource.id}: {o.error}")
        for o in outcomes
        if o.status == "failed"
    ]
    return plan, pending, outcomes, errors


# -- the scan -----------------------------------------------------------------------------


def run_scan(
    policy: Policy,
    *,
    enforce: bool = False,
    now: datetime | None = None,
    sources: Mapping[str, SpendSource] | Sequence[SpendSource] | None = None,
    store: StateStore | None = None,
    progress: bool = True,
    console: Console | None = None,
    enforcers: Mapping[str, Enforcer] | None = None,
) -> ScanResult:
    """Run one scan of ``policy``; dry-run unless ``enforce`` (see the module docstring).

    ``sources`` (name -> source) replaces the policy's sources, ``store`` its state store and
    ``enforcers`` (provider -> enforcer) the installed providers' enforcers; ``now`` pins the
    clock (period boundaries, settle window). Errors that do not stop the scan are listed in
    :attr:`ScanResult.errors`; bad configuration raises :class:`ConfigError`.
    """
    from cloudcircuit.enforcement import new_run_id
    from cloudcircuit.state import open_state, record_scan

    started = datetime.now(UTC)
    at = to_utc(now) if now is not None else started
    run_id = new_run_id(started)
    own_store = store is None
    state = open_state(policy.state) if store is None else store
    try:
        open_errors: list[ScanError] = []
        if sources is None:
            opened, open_errors = _open_sources(policy, at)
        else:
            opened = _as_source_map(sources)
        errors = list(open_errors)
        steps = len(policy.budgets) * max(1, len(opened)) + len(policy.budgets)
        stats: dict[str, SourceStats] = {}
        ticker = _Progress(progress, console, steps)
        with ticker.running():
            try:
                broken: dict[str, ScanError] = {}
                reads = [
                    _read_budget(policy, b, opened, at, stats, ticker, broken)
                    for b in policy.budgets
                ]
                judged: list[list[_Judged]] = []
                for read in reads:
                    ticker.step(f"evaluating {read.budget.name}")
                    judged.append(_judge(policy, read, at))
            except ConfigError:
                raise
            except Exception as exc:
                # the read or the evaluation died: count it, then let it propagate
                record_scan(
                    state,
                    BREAKER_NAME,
                    ok=False,
                    failure_threshold=policy.breaker.failure_threshold,
                    cooldown_scans=policy.breaker.cooldown_scans,
                    reason=f"scan failed: {exc}",
                    now=at,
                )
                raise
        for read in reads:
            errors.extend(read.failed)
            errors.extend(
                ScanError("incomplete", why, budget=read.budget.name) for why in read.incomplete
            )
        problems = [e.message for e in errors]
        breaker = record_scan(
            state,
            BREAKER_NAME,
            ok=not problems,
            failure_threshold=policy.breaker.failure_threshold,
            cooldown_scans=policy.breaker.cooldown_scans,
            reason="; ".join(problems)[:500] if problems else None,
            now=at,
        )
        decisions: list[Decision] = []
        scopes: list[ScopeResult] = []
        for read, judged_one in zip(reads, judged, strict=True):
            d, s = _decide(policy, read, judged_one, breaker, at, open_errors)
            decisions.extend(d)
            scopes.extend(s)
        report, alert_errors = _alert(policy, decisions, state, run_id)
        plan, pending, outcomes, enforce_errors = _enforce(
            policy, decisions, state, run_id, enforce=enforce, enforcers=enforcers
        )
        return ScanResult(
            run_id=run_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            now=at,
            dry_run=not enforce,
            decisions=decisions,
            scopes=scopes,
            plan=plan,
            pending=pending,
            outcomes=outcomes,
            alerts=report,
            source_stats=list(stats.values()),
            breaker=breaker,
            breaker_open=breaker.decision(policy.breaker.failure_threshold).is_open,
            errors=[*errors, *alert_errors, *enforce_errors],
        )
    finally:
        if own_store:
            state.close()
