"""Provider-neutral enforcement: plan, safety rails, journal, execute and restore.

Safe by construction (DESIGN.md):

- targets come from scope + tag selectors resolved by a provider :class:`Enforcer`, never from
  hard-coded IDs;
- a resource carrying the protect tag is never planned, whatever the selector says;
- ``max_resources`` (count AND percent) aborts the whole plan with :class:`SafetyLimitError`
  before any action runs. The percent is taken of the *population* of each action: the
  resources the enforcer resolves for the same resource types, accounts and regions with the
  tag selectors dropped (so ``tag:env=*`` matching most of a fleet is caught);
- every action is journaled in the :class:`StateStore` before it runs (the captured state) and
  after (the new state and status), so :func:`restore_run` can put capacity back exactly;
- one resource's failure is reported as a ``failed`` outcome and does not stop the others;
- enforcers answer ``unchanged`` when a resource is already in the target state, so running
  the same plan twice changes nothing the second time; restore only undoes what a run changed.

An enforcer may offer ``capture_batch`` / ``apply_batch`` (see :class:`BatchEnforcer`): the
executor then hands it every resource of one action, type, account and region at once, so a
provider can use its batch APIs (EC2 CreateTags takes 1,000 IDs per call).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from cloudcircuit.decision import Decision
from cloudcircuit.errors import EnforcementError, InputError, RestoreError, SafetyLimitError
from cloudcircuit.providers import (
    ActionOutcome,
    Enforcer,
    JournalEntry,
    Resource,
    StateStore,
    TargetSelector,
)

__all__ = [
    "ACTIONS",
    "ActionSpecLike",
    "BatchEnforcer",
    "Limits",
    "ManualAction",
    "Plan",
    "PlannedAction",
    "build_plan",
    "execute_plan",
    "kill_switch_plan",
    "new_run_id",
    "parse_protect_tag",
    "restore_run",
]

#: the actions a policy may ask for
ACTIONS: tuple[str, ...] = ("tag", "stop", "scale_down")
_RESTORE_SUFFIX = ":restore"


class _SelectorLike(Protocol):
    def to_target(self) -> TargetSelector: ...


class ActionSpecLike(Protocol):
    """What :func:`build_plan` reads from a policy ``ActionSpec`` (structural, so the core
    does not depend on the policy module's import order)."""

    @property
    def action(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def resource_types(self) -> Sequence[str]: ...

    @property
    def selector(self) -> _SelectorLike: ...

    @property
    def params(self) -> Mapping[str, Any]: ...


class _LimitsLike(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def percent(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_resources``: at most ``count`` resources and ``percent`` % of each population."""

    count: int = 25
    percent: float = 20.0


@runtime_checkable
class BatchEnforcer(Protocol):
    """Optional batch side of an :class:`Enforcer` (same semantics, many resources per call)."""

    def capture_batch(self, resources: Sequence[Resource]) -> list[dict[str, Any]]: ...

    def apply_batch(
        self,
        action: str,
        resources: Sequence[Resource],
        params: Mapping[str, Any],
        *,
        dry_run: bool,
    ) -> list[ActionOutcome]: ...


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One action on one resource, with the spec and decision that asked for it."""

    action: str
    resource: Resource
    params: Mapping[str, Any]
    spec: ActionSpecLike | None = None
    budget: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        res = self.resource
        return {
            "action": self.action,
            "provider": res.provider,
            "type": res.type,
            "id": res.id,
            "name": res.name,
            "region": res.region,
            "account": res.account,
            "params": dict(self.params),
            "budget": self.budget,
            "reason": self.reason,
        }


@dataclass(slots=True)
class Plan:
    """What a run would do; built by :func:`build_plan`, carried out by :func:`execute_plan`."""

    run_id: str
    actions: list[PlannedAction] = field(default_factory=list)
    #: resources the selectors matched but the protect tag excluded
    protected: list[Resource] = field(default_factory=list)
    #: population size per (provider, action, types) used for the percent rail
    populations: dict[str, int] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    enforcers: Mapping[str, Enforcer] = field(default_factory=dict, repr=False)

    @property
    def resources(self) -> list[Resource]:
        """Distinct resources the plan touches, in plan order."""
        seen: dict[tuple[str, str, str], Resource] = {}
        for planned in self.actions:
            seen.setdefault(_rkey(planned.resource), planned.resource)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "actions": [a.to_dict() for a in self.actions],
            "protected": [{"type": r.type, "id": r.id, "name": r.name} for r in self.protected],
            "populations": dict(self.populations),
            "limits": {"count": self.limits.count, "percent": self.limits.percent},
        }


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: ``20261123T031500Z-1a2b3c``."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def parse_protect_tag(protect_tag: str) -> tuple[str, str | None]:
    """``"cloudcircuit:protect=true"`` -> ``("cloudcircuit:protect", "true")``; a bare key
    means "tag present, any value"."""
    key, sep, value = protect_tag.partition("=")
    key = key.strip()
    if not key:
        raise InputError(f"protect_tag {protect_tag!r}: expected KEY=VALUE or KEY")
    return key, (value.strip() if sep else None)


def _is_protected(resource: Resource, key: str, value: str | None) -> bool:
    if key not in resource.tags:
        return False
    return value is None or resource.tags[key] == value


def _rkey(resource: Resource) -> tuple[str, str, str]:
    return (resource.provider, resource.type, resource.id)


def _limits(max_resources: _LimitsLike | int | None) -> Limits:
    if max_resources is None:
        return Limits()
    if isinstance(max_resources, int):
        return Limits(count=max_resources, percent=100.0)
    return Limits(count=int(max_resources.count), percent=float(max_resources.percent))


def _target(spec: ActionSpecLike) -> TargetSelector:
    target = spec.selector.to_target()
    if spec.resource_types and not target.resource_types:
        target = replace(target, resource_types=tuple(spec.resource_types))
    return target


def build_plan(
    requests: Sequence[tuple[ActionSpecLike, Decision]],
    enforcers: Mapping[str, Enforcer],
    *,
    protect_tag: str = "cloudcircuit:protect=true",
    max_resources: _LimitsLike | int | None = None,
    run_id: str | None = None,
) -> Plan:
    """Resolve every requested action to resources and check the safety rails.

    Raises :class:`SafetyLimitError` (nothing has run yet) when the plan would touch more than
    ``max_resources.count`` distinct resources, or more than ``max_resources.percent`` % of an
    action's population. A resource is planned once per action even when two specs select it.
    """
    limits = _limits(max_resources)
    pkey, pvalue = parse_protect_tag(protect_tag)
    plan = Plan(run_id=run_id or new_run_id(), limits=limits, enforcers=enforcers)
    planned_keys: set[tuple[str, str, str, str]] = set()
    protected_keys: set[tuple[str, str, str]] = set()
    for spec, decision in requests:
        if spec.action not in ACTIONS:
            raise InputError(f"action {spec.action!r}: expected one of {', '.join(ACTIONS)}")
        enforcer = enforcers.get(spec.provider)
        if enforcer is None:
            raise EnforcementError(
                f"budget {decision.budget!r} asks for {spec.action} on provider "
                f"{spec.provider!r}, but no enforcer for it is loaded"
            )
        target = _target(spec)
        matched = [r for r in enforcer.resolve(target) if target.matches(r)]
        chosen: list[Resource] = []
        for resource in matched:
            if _is_protected(resource, pkey, pvalue):
                if _rkey(resource) not in protected_keys:
                    protected_keys.add(_rkey(resource))
                    plan.protected.append(resource)
                continue
            key = (spec.action, *_rkey(resource))
            if key in planned_keys:
                continue
            planned_keys.add(key)
            chosen.append(resource)
            plan.actions.append(
                PlannedAction(
                    action=spec.action,
                    resource=resource,
                    params=dict(spec.params),
                    spec=spec,
                    budget=decision.budget,
                    reason=decision.reason,
                )
            )
        if chosen and limits.percent < 100.0:
            population_selector = TargetSelector(
                resource_types=target.resource_types,
                regions=target.regions,
                accounts=target.accounts,
            )
            population = len(enforcer.resolve(population_selector))
            label = f"{spec.provider}:{spec.action}:{','.join(target.resource_types) or 'any'}"
            plan.populations[label] = max(population, plan.populations.get(label, 0))
            share = 100.0 * len(chosen) / max(population, len(chosen))
            if share > limits.percent:
                raise SafetyLimitError(
                    f"budget {decision.budget!r}: {spec.action} would touch {len(chosen)} of "
                    f"{population} resources ({share:.1f}%) in {label}, above max_resources."
                    f"percent={limits.percent:g}; nothing was changed"
                )
    distinct = len(plan.resources)
    if distinct > limits.count:
        raise SafetyLimitError(
            f"plan {plan.run_id} would touch {distinct} resources, above "
            f"max_resources.count={limits.count}; nothing was changed"
        )
    return plan


@dataclass(frozen=True, slots=True)
class _FixedSelector:
    target: TargetSelector

    def to_target(self) -> TargetSelector:
        return self.target


@dataclass(frozen=True, slots=True)
class ManualAction:
    """An action spec built from command-line / event arguments (the manual kill-switch)."""

    action: str
    provider: str
    target: TargetSelector
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resource_types(self) -> Sequence[str]:
        return self.target.resource_types

    @property
    def selector(self) -> _FixedSelector:
        return _FixedSelector(self.target)


def kill_switch_plan(
    enforcer: Enforcer,
    *,
    action: str,
    target: TargetSelector,
    params: Mapping[str, Any] | None = None,
    protect_tag: str = "cloudcircuit:protect=true",
    max_resources: _LimitsLike | int | None = None,
    run_id: str | None = None,
) -> Plan:
    """The plan of a manual kill-switch: same rails (protect tag, max_resources) as a scan."""
    if not target.tags and not target.resource_types:
        raise InputError("kill-switch needs a tag selector or resource types; refusing 'all'")
    spec = ManualAction(action, enforcer.provider, target, dict(params or {}))
    decision = Decision(
        budget="kill-switch",
        scope={},
        action="block",
        severity="critical",
        reason="manual kill-switch",
    )
    return build_plan(
        [(spec, decision)],
        {enforcer.provider: enforcer},
        protect_tag=protect_tag,
        max_resources=max_resources,
        run_id=run_id,
    )


def _group_key(planned: PlannedAction) -> tuple[str, str, str, str, str, str]:
    res = planned.resource
    params = repr(sorted(planned.params.items()))
    return (res.provider, planned.action, res.type, res.account or "", res.region or "", params)


def _groups(plan: Plan) -> list[list[PlannedAction]]:
    groups: dict[tuple[str, ...], list[PlannedAction]] = {}
    for planned in plan.actions:
        groups.setdefault(_group_key(planned), []).append(planned)
    return list(groups.values())


def _failed(resource: Resource, action: str, exc: Exception) -> ActionOutcome:
    return ActionOutcome(resource=resource, action=action, status="failed", error=str(exc))


class _Journal:
    """Numbers entries and writes them to the store (before/after share one ``seq``)."""

    def __init__(self, store: StateStore, run_id: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.run_id = run_id
        self.clock = clock
        self.seq = len({e.seq for e in store.journal(run_id)})

    def before(self, planned: PlannedAction, state: Mapping[str, Any]) -> int:
        self.seq += 1
        self.store.append_journal(
            JournalEntry(
                run_id=self.run_id,
                seq=self.seq,
                phase="before",
                action=planned.action,
                resource=planned.resource,
                state=dict(state),
                status="planned",
                at=self.clock(),
            )
        )
        return self.seq

    def after(self, seq: int, outcome: ActionOutcome) -> None:
        self.store.append_journal(
            JournalEntry(
                run_id=self.run_id,
                seq=seq,
                phase="after",
                action=outcome.action,
                resource=outcome.resource,
                state=dict(outcome.after),
                status=outcome.status,
                at=self.clock(),
                error=outcome.error,
            )
        )


def _capture(enforcer: Enforcer, group: Sequence[PlannedAction]) -> list[dict[str, Any] | None]:
    resources = [p.resource for p in group]
    if isinstance(enforcer, BatchEnforcer):
        try:
            return list(enforcer.capture_batch(resources))
        except EnforcementError:
            pass  # fall through: capture one by one to find the resource that fails
    out: list[dict[str, Any] | None] = []
    for resource in resources:
        try:
            out.append(enforcer.capture(resource))
        except Exception:
            out.append(None)
    return out


def _apply(
    enforcer: Enforcer, group: Sequence[PlannedAction], *, dry_run: bool
) -> list[ActionOutcome]:
    head = group[0]
    if isinstance(enforcer, BatchEnforcer):
        outcomes = enforcer.apply_batch(
            head.action, [p.resource for p in group], head.params, dry_run=dry_run
        )
        if len(outcomes) != len(group):
            raise EnforcementError(
                f"{head.resource.provider} enforcer answered {len(outcomes)} outcomes for "
                f"{len(group)} resources"
            )
        return outcomes
    out: list[ActionOutcome] = []
    for planned in group:
        try:
            out.append(
                enforcer.apply(planned.action, planned.resource, planned.params, dry_run=dry_run)
            )
        except Exception as exc:
            out.append(_failed(planned.resource, planned.action, exc))
    return out


def execute_plan(
    plan: Plan,
    store: StateStore | None,
    *,
    dry_run: bool = True,
    clock: Callable[[], datetime] | None = None,
) -> list[ActionOutcome]:
    """Carry out ``plan``; one outcome per planned action, in plan order.

    Dry-run resolves and probes permissions (the enforcer's ``dry_run`` path) and writes no
    journal. Enforcing journals each resource's captured state *before* acting and the new
    state *after*; a resource whose state cannot be captured is not touched (it could not be
    restored) and is reported ``failed``.
    """
    if not dry_run and store is None:
        raise EnforcementError("enforcing needs a state store for the journal")
    now = clock or (lambda: datetime.now(UTC))
    journal = _Journal(store, plan.run_id, now) if store is not None and not dry_run else None
    results: dict[int, ActionOutcome] = {}
    index = {id(p): i for i, p in enumerate(plan.actions)}
    for group in _groups(plan):
        provider = group[0].resource.provider
        enforcer = plan.enforcers.get(provider)
        if enforcer is None:
            err = EnforcementError(f"no enforcer loaded for provider {provider!r}")
            for planned in group:
                results[index[id(planned)]] = _failed(planned.resource, planned.action, err)
            continue
        if dry_run or journal is None:
            try:
                outcomes = _apply(enforcer, group, dry_run=True)
            except Exception as exc:
                outcomes = [_failed(p.resource, p.action, exc) for p in group]
            for planned, outcome in zip(group, outcomes, strict=True):
                results[index[id(planned)]] = outcome
            continue
        states = _capture(enforcer, group)
        runnable: list[PlannedAction] = []
        seqs: list[int] = []
        for planned, state in zip(group, states, strict=True):
            if state is None:
                results[index[id(planned)]] = _failed(
                    planned.resource,
                    planned.action,
                    EnforcementError("its current state could not be read; not touched"),
                )
                continue
            seqs.append(journal.before(planned, state))
            runnable.append(planned)
        if not runnable:
            continue
        try:
            outcomes = _apply(enforcer, runnable, dry_run=False)
        except Exception as exc:
            outcomes = [_failed(p.resource, p.action, exc) for p in runnable]
        for planned, seq, outcome in zip(runnable, seqs, outcomes, strict=True):
            journal.after(seq, outcome)
            results[index[id(planned)]] = outcome
    return [results[i] for i in range(len(plan.actions))]


def restore_run(
    run_id: str,
    store: StateStore,
    enforcers: Mapping[str, Enforcer],
    *,
    clock: Callable[[], datetime] | None = None,
) -> list[ActionOutcome]:
    """Put every resource run ``run_id`` changed back to its journaled before-state.

    Each resource goes back to the state captured before the run's FIRST action on it (a run
    may tag and then stop one instance), in reverse order. Resources whose every action left
    them unchanged, was denied or failed are skipped (nothing to undo); an entry with a
    ``before`` but no ``after`` (the process died mid-action) counts as changed, since the
    action may have happened. The restore is
    itself journaled under ``RUN_ID:restore`` and is idempotent: a second call finds every
    resource already back and answers ``unchanged``.
    """
    entries = store.journal(run_id)
    if not entries:
        raise RestoreError(f"run {run_id!r} has no journal in the state store")
    afters = {e.seq: e for e in entries if e.phase == "after"}
    first: dict[tuple[str, str, str], JournalEntry] = {}
    changed: set[tuple[str, str, str]] = set()
    for entry in sorted((e for e in entries if e.phase == "before"), key=lambda e: e.seq):
        key = _rkey(entry.resource)
        first.setdefault(key, entry)
        after = afters.get(entry.seq)
        if after is None or after.status == "done":
            changed.add(key)
    now = clock or (lambda: datetime.now(UTC))
    journal = _Journal(store, run_id + _RESTORE_SUFFIX, now)
    outcomes: list[ActionOutcome] = []
    for key in reversed(list(first)):
        if key not in changed:
            continue
        before = first[key]
        planned = PlannedAction(action="restore", resource=before.resource, params={})
        enforcer = enforcers.get(before.resource.provider)
        if enforcer is None:
            outcomes.append(
                _failed(
                    before.resource,
                    "restore",
                    RestoreError(f"no enforcer loaded for provider {before.resource.provider!r}"),
                )
            )
            continue
        try:
            current = enforcer.capture(before.resource)
        except Exception:
            current = {}
        rseq = journal.before(planned, current)
        try:
            outcome = enforcer.restore(before.resource, before.state)
        except Exception as exc:
            outcome = _failed(before.resource, "restore", exc)
        journal.after(rseq, outcome)
        outcomes.append(outcome)
    return outcomes
