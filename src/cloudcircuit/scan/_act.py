"""Deciding and acting: decisions (with the breaker for fail-closed budgets), alerts, and the
enforcement plan (only for budgets that have actions, only through installed providers; the
rest is listed as not executable with the package to install)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudcircuit.decision import Decision, Evidence, combine
from cloudcircuit.errors import (
    CloudCircuitError,
    EnforcementError,
    ProviderError,
    ProviderNotInstalledError,
    SafetyLimitError,
)
from cloudcircuit.providers import (
    ActionOutcome,
    Enforcer,
    StateStore,
    load_provider,
)
from cloudcircuit.scan._judge import _Judged
from cloudcircuit.scan._read import _BudgetRead, period_bounds
from cloudcircuit.scan._result import ErrorKind, PendingAction, ScanError, ScopeResult
from cloudcircuit.spend import scope_key

if TYPE_CHECKING:
    from cloudcircuit.enforcement import Plan
    from cloudcircuit.policy import Budget, Policy


__all__ = [
    "_Watched",
    "_alert",
    "_breaker_evidence",
    "_decide",
    "_enforce",
    "_enforcers",
    "_selector_scope",
]


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
