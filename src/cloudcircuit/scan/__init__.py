"""One scan: sources -> series -> guardrails and detectors -> decisions -> alerts -> enforcement.

The order is what keeps a failed scan from leaving anything half-written:

1. **read** every budget's series from every source (no state is written while reading);
2. **judge** each series: the batch guardrails over all series of a budget at once, the
   multi-window burn rates and the configured detectors, each producing
   :class:`~cloudcircuit.decision.Evidence` that carries the action the policy maps it to;
3. **breaker**: fold the scan's health (a failed read, or data more incomplete than the settle
   window explains) into the persisted circuit breaker in one transaction; while it is open,
   ``fail_closed`` budgets decide block with the breaker as evidence;
4. **alert**: every decision goes to the sinks, which send throttle/block at or above their
   ``min_severity`` and resolve what an allow clears (de-duplicated through the state store);
5. **plan** the throttle/block actions of budgets that have them, with the safety rails checked
   before anything runs, and **execute** it, dry-run unless ``enforce`` is given; the
   enforcement module journals before and after each action.

An unexpected exception while reading still counts one breaker failure and then propagates;
nothing after the read phase has run, so the journal holds nothing of this run.

Anomaly rules judge the latest *complete* bucket (late cost data must not read as a drop or a
spike); the budget check uses the period-to-date spend (calendar UTC day or month) including
the partial bucket; the forecast projects from the complete buckets of the period.

Layout: ``_read`` (queries, settle window, staleness), ``_judge`` (evidence), ``_act``
(decisions, alerts, enforcement), ``_result`` (what :func:`run_scan` returns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloudcircuit.errors import ConfigError
from cloudcircuit.providers import (
    Enforcer,
    ScanAwareSource,
    SourceStats,
    SpendSource,
    StateStore,
)
from cloudcircuit.scan._act import _alert, _decide, _enforce
from cloudcircuit.scan._judge import _judge_budget, _Judged
from cloudcircuit.scan._read import (
    _as_source_map,
    _open_sources,
    _Progress,
    _read_budget,
    period_bounds,
)
from cloudcircuit.scan._result import PendingAction, ScanError, ScanResult, ScopeResult
from cloudcircuit.spend import to_utc

if TYPE_CHECKING:
    from rich.console import Console

    from cloudcircuit.decision import Decision
    from cloudcircuit.policy import Policy

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
        for source in opened.values():
            if isinstance(source, ScanAwareSource):  # caches final buckets, caps API spend
                source.bind_state(state)
                source.begin_scan()
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
                    judged.append(_judge_budget(policy, read, at))
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
