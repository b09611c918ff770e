"""The Lambda entry point (thin): parse the event, build settings, call the core.

Events:

- an EventBridge scheduled event (``detail-type: Scheduled Event``) runs a scan of the policy;
- an AWS Budgets notification delivered through SNS runs a scan of the policy budget with the
  notified name (``Budget Name: NAME`` in the message; ``CLOUDCIRCUIT_BUDGET_MAP`` may map AWS
  budget names to policy budget names);
- a direct invoke ``{"action": "scan" | "kill-switch" | "restore", ...}`` runs that.

Dry-run unless ``CLOUDCIRCUIT_ENFORCE=true`` (scans and the kill-switch; a restore always
acts, it only puts back what a run changed). Settings come from environment variables with
the prefix ``CLOUDCIRCUIT_`` (pydantic-settings). Nothing but this module and pydantic-settings
is imported at import time; the core is imported on the first invocation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "HandlerSettings",
    "budget_names_from_sns",
    "classify",
    "handler",
]

_BUDGET_NAME = re.compile(r"^\s*Budget Name:\s*(?P<name>.+?)\s*$", re.MULTILINE)


class HandlerSettings(BaseSettings):
    """Environment of the function (prefix ``CLOUDCIRCUIT_``)."""

    model_config = SettingsConfigDict(env_prefix="CLOUDCIRCUIT_", extra="ignore")

    policy: str = Field(default="policy.yaml", description="Path of the policy file.")
    enforce: bool = Field(default=False, description="Act (true) or only plan (dry-run).")
    state: str | None = Field(default=None, description="State URL overriding the policy's.")
    budget_map: dict[str, str] = Field(
        default_factory=dict, description="AWS Budgets name -> policy budget name (JSON)."
    )


def classify(event: Mapping[str, Any]) -> str:
    """``schedule``, ``budget``, ``scan``, ``kill-switch`` or ``restore``."""
    from cloudcircuit.errors import InputError

    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    records = event.get("Records")
    if isinstance(records, list) and records:
        source = records[0].get("EventSource") or records[0].get("eventSource")
        if source == "aws:sns":
            return "budget"
        raise InputError(f"event Records[0].EventSource {source!r}: only aws:sns is handled")
    action = event.get("action")
    if action in ("scan", "kill-switch", "restore"):
        return str(action)
    raise InputError(
        "unrecognized event: expected an EventBridge schedule, an SNS budget notification or "
        '{"action": "scan" | "kill-switch" | "restore"}'
    )


def budget_names_from_sns(event: Mapping[str, Any]) -> list[str]:
    """Budget names in the SNS messages of an AWS Budgets notification."""
    from cloudcircuit.errors import InputError

    names: list[str] = []
    for i, record in enumerate(event.get("Records", [])):
        message = str(record.get("Sns", {}).get("Message", ""))
        found = _BUDGET_NAME.search(message)
        if found is None:
            raise InputError(f"Records[{i}].Sns.Message: no 'Budget Name:' line in the message")
        names.append(found.group("name"))
    return names


def _policy(settings: HandlerSettings, only: list[str] | None = None) -> Any:
    from cloudcircuit.errors import ConfigError
    from cloudcircuit.policy import load_policy

    policy = load_policy(settings.policy)
    update: dict[str, Any] = {}
    if settings.state:
        update["state"] = settings.state
    if only is not None:
        known = [b.name for b in policy.budgets]
        missing = [n for n in only if n not in known]
        if missing:
            raise ConfigError(
                [("budgets", f"no budget named {n!r} in the policy; have {known}") for n in missing]
            )
        update["budgets"] = [b for b in policy.budgets if b.name in only]
    return policy.model_copy(update=update) if update else policy


def _scan(settings: HandlerSettings, only: list[str] | None) -> dict[str, Any]:
    """Run the scan; ``run_scan`` binds Cost Explorer sources to the policy's state store, so
    final buckets are cached there (a repeat scan pays only for what can still change)."""
    from cloudcircuit.scan import run_scan

    policy = _policy(settings, only)
    result = run_scan(policy, enforce=settings.enforce, progress=False)
    payload: dict[str, Any] = result.to_dict()
    return payload


def _enforcer(policy: Any, provider: str) -> Any:
    from cloudcircuit.providers import load_provider

    config: Mapping[str, Any] = next((s.settings for s in policy.sources if s.type == provider), {})
    return load_provider(provider).enforcer(config)


def _kill_switch(settings: HandlerSettings, event: Mapping[str, Any]) -> dict[str, Any]:
    from cloudcircuit.enforcement import execute_plan, kill_switch_plan
    from cloudcircuit.providers import TargetSelector
    from cloudcircuit.state import open_state

    policy = _policy(settings)
    provider = str(event.get("provider", "aws"))
    target = TargetSelector(
        resource_types=tuple(event.get("resource_types", ())),
        tags=dict(event.get("tags", {})),
        regions=tuple(event.get("regions", ())),
        accounts=tuple(str(a) for a in event.get("accounts", ())),
    )
    plan = kill_switch_plan(
        _enforcer(policy, provider),
        action=str(event.get("kill_action", "stop")),
        target=target,
        params=dict(event.get("params", {})),
        protect_tag=policy.enforcement.protect_tag,
        max_resources=policy.enforcement.max_resources,
    )
    store = open_state(policy.state)
    try:
        outcomes = execute_plan(plan, store, dry_run=not settings.enforce)
    finally:
        store.close()
    return {
        "plan": plan.to_dict(),
        "dry_run": not settings.enforce,
        "outcomes": [
            {"id": o.resource.id, "type": o.resource.type, "status": o.status, "error": o.error}
            for o in outcomes
        ],
    }


def _restore(settings: HandlerSettings, event: Mapping[str, Any]) -> dict[str, Any]:
    from cloudcircuit.enforcement import restore_run
    from cloudcircuit.errors import InputError
    from cloudcircuit.state import open_state

    run_id = event.get("run_id")
    if not run_id:
        raise InputError('restore needs "run_id"')
    policy = _policy(settings)
    store = open_state(policy.state)
    try:
        providers = {e.resource.provider for e in store.journal(str(run_id))}
        enforcers = {p: _enforcer(policy, p) for p in providers}
        outcomes = restore_run(str(run_id), store, enforcers)
    finally:
        store.close()
    return {
        "run_id": run_id,
        "outcomes": [
            {"id": o.resource.id, "type": o.resource.type, "status": o.status, "error": o.error}
            for o in outcomes
        ],
    }


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda handler: returns a JSON-serializable summary; cloudcircuit errors become
    ``{"ok": false, "error": ...}`` (logged by Lambda), other exceptions propagate."""
    from cloudcircuit.errors import CloudCircuitError

    settings = HandlerSettings()
    try:
        kind = classify(event)
        if kind == "schedule":
            body = _scan(settings, None)
        elif kind == "budget":
            names = [settings.budget_map.get(n, n) for n in budget_names_from_sns(event)]
            body = _scan(settings, sorted(set(names)))
        elif kind == "scan":
            budgets = event.get("budgets")
            body = _scan(settings, list(budgets) if budgets else None)
        elif kind == "kill-switch":
            body = _kill_switch(settings, event)
        else:
            body = _restore(settings, event)
    except CloudCircuitError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "kind": kind, "enforce": settings.enforce, **body}
