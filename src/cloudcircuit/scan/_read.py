"""Reading: one query per budget and source, then the scan's own view of completeness.

The query covers ``lookback_days`` (and always the whole current period) through the bucket
holding ``now``. Buckets starting after ``now`` are dropped, buckets ending less than
``settle_hours`` before it are marked incomplete whatever the source says, and a series whose
newest complete bucket is older than the settle window explains counts as incomplete data (a
breaker failure). Series of one scope read from several sources are summed; a currency other
than the budget's is an error naming the scope.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudcircuit.errors import (
    CloudCircuitError,
    ConfigError,
    CurrencyMismatchError,
    InputError,
)
from cloudcircuit.providers import (
    SourceStats,
    SpendQuery,
    SpendSource,
)
from cloudcircuit.scan._result import ErrorKind, ScanError
from cloudcircuit.spend import Granularity, SpendSeries

if TYPE_CHECKING:
    from rich.console import Console

    from cloudcircuit.policy import Budget, Policy


__all__ = [
    "_BudgetRead",
    "_Progress",
    "_add_stats",
    "_as_source_map",
    "_merge",
    "_open_sources",
    "_query_for",
    "_read_budget",
    "_settle",
    "_staleness",
    "period_bounds",
]


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
