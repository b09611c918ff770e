"""``cloudcircuit kill-switch``, ``cloudcircuit restore RUN_ID`` and ``cloudcircuit runs``.

The kill-switch is the manual brake: it resolves resources by scope and tag selectors, shows
the plan (protected resources and the max_resources rail apply as in a scan), asks for
confirmation unless ``--yes``, and acts only with ``--enforce``. Every action is journaled, so
``cloudcircuit restore RUN_ID`` puts the resources back exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cloudcircuit.cli.app import EXIT_ENFORCEMENT, app, console, handle_errors
from cloudcircuit.errors import InputError
from cloudcircuit.providers import ActionOutcome, Enforcer, TargetSelector, load_provider

__all__ = [
    "DEFAULT_STATE",
    "kill_switch",
    "outcomes_table",
    "parse_scope",
    "parse_selectors",
    "plan_table",
    "restore",
    "runs",
]

DEFAULT_STATE = "sqlite:///.cloudcircuit/state.db"
_SCOPE_KEYS = {
    "account": "accounts",
    "accounts": "accounts",
    "region": "regions",
    "regions": "regions",
}


def parse_scope(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["account=111,222", "region=us-east-1"]`` -> ``{"accounts": (...), "regions": (...)}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        for part in item.split(";"):
            key, sep, value = part.partition("=")
            field = _SCOPE_KEYS.get(key.strip())
            if not sep or field is None or not value.strip():
                raise InputError(
                    f"--scope {item!r}: expected account=ID[,ID] or region=NAME[,NAME]"
                )
            out.setdefault(field, []).extend(v.strip() for v in value.split(",") if v.strip())
    return {k: tuple(v) for k, v in out.items()}


def parse_selectors(items: Sequence[str]) -> dict[str, str]:
    """``["tag:team=ml", "tag:env=*"]`` -> ``{"team": "ml", "env": "*"}``."""
    tags: dict[str, str] = {}
    for item in items:
        if not item.startswith("tag:") or "=" not in item:
            raise InputError(f"--selector {item!r}: expected tag:KEY=VALUE (VALUE * = present)")
        key, _, value = item[4:].partition("=")
        if not key or not value:
            raise InputError(f"--selector {item!r}: both KEY and VALUE are needed")
        tags[key] = value
    return tags


def plan_table(plan: Any) -> Table:
    table = Table(title=f"plan {plan.run_id}", title_justify="left")
    for col in ("action", "type", "resource", "account", "region"):
        table.add_column(col)
    for planned in plan.actions:
        r = planned.resource
        table.add_row(planned.action, r.type, r.name or r.id, r.account or "", r.region or "")
    for r in plan.protected:
        table.add_row("[dim]protected[/]", r.type, r.name or r.id, r.account or "", r.region or "")
    return table


def outcomes_table(title: str, outcomes: Sequence[ActionOutcome]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("action", "type", "resource", "status", "error"):
        table.add_column(col)
    colors = {"done": "green", "failed": "red", "denied": "red", "unchanged": "dim"}
    for o in outcomes:
        color = colors.get(o.status, "")
        status = f"[{color}]{o.status}[/]" if color else o.status
        table.add_row(
            o.action, o.resource.type, o.resource.name or o.resource.id, status, o.error or ""
        )
    return table


def _policy(path: Path | None) -> Any:
    if path is None:
        return None
    from cloudcircuit.policy import load_policy

    return load_policy(path)


def _enforcer(provider: str, policy: Any) -> Enforcer:
    settings: Mapping[str, Any] = {}
    if policy is not None:
        settings = next((s.settings for s in policy.sources if s.type == provider), {})
    return load_provider(provider).enforcer(settings)


def _state_url(state: str | None, policy: Any) -> str:
    if state:
        return state
    return str(policy.state) if policy is not None else DEFAULT_STATE


@app.command("kill-switch")
@handle_errors
def kill_switch(
    provider: str = typer.Option("aws", "--provider", help="Provider whose enforcer acts."),
    scope: list[str] = typer.Option([], "--scope", help="account=ID[,ID] or region=NAME[,..]."),
    selector: list[str] = typer.Option(
        [], "--selector", help="tag:KEY=VALUE (repeatable; all must match; VALUE * = present)."
    ),
    resource_type: list[str] = typer.Option(
        [], "--type", help="Resource type, e.g. ec2:instance (repeatable; default: all)."
    ),
    action: str = typer.Option("stop", "--action", help="stop | scale-down | tag"),
    tag_key: str = typer.Option("cloudcircuit:throttled", help="Tag key for --action tag."),
    tag_value: str = typer.Option("true", help="Tag value for --action tag."),
    policy_path: Path | None = typer.Option(
        None, "--policy", help="Policy for provider settings, protect tag, max_resources, state."
    ),
    state: str | None = typer.Option(None, "--state", help="State URL (journal)."),
    enforce: bool = typer.Option(False, "--enforce", help="Act; without it only plan."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Stop, scale down or tag resources chosen by scope and tag selectors (dry-run by default)."""
    from cloudcircuit.enforcement import Limits, execute_plan, kill_switch_plan
    from cloudcircuit.state import open_state

    name = action.replace("-", "_")
    if name not in ("stop", "scale_down", "tag"):
        raise InputError(f"--action {action!r}: expected stop, scale-down or tag")
    where = parse_scope(scope)
    target = TargetSelector(
        resource_types=tuple(resource_type),
        tags=parse_selectors(selector),
        regions=where.get("regions", ()),
        accounts=where.get("accounts", ()),
    )
    policy = _policy(policy_path)
    rails = policy.enforcement if policy is not None else None
    with console.status("resolving targets"):
        plan = kill_switch_plan(
            _enforcer(provider, policy),
            action=name,
            target=target,
            params={"key": tag_key, "value": tag_value} if name == "tag" else {},
            protect_tag=rails.protect_tag if rails else "cloudcircuit:protect=true",
            max_resources=rails.max_resources if rails else Limits(),
        )
    console.print(plan_table(plan))
    if not plan.actions:
        console.print("nothing to do: no resource matches (protected ones are never touched)")
        return
    if enforce and not yes:
        typer.confirm(f"{name} {len(plan.actions)} resource(s) now?", abort=True)
    store = open_state(_state_url(state, policy))
    try:
        verb = "probing" if not enforce else "acting on"
        with console.status(f"{verb} {len(plan.actions)} resource(s)"):
            outcomes = execute_plan(plan, store, dry_run=not enforce)
    finally:
        store.close()
    console.print(outcomes_table("dry-run" if not enforce else f"run {plan.run_id}", outcomes))
    if enforce:
        console.print(f"undo with: [bold]cloudcircuit restore {plan.run_id}[/]")
    else:
        console.print("dry-run: nothing changed (add --enforce to act)")
    if any(o.status in ("failed", "denied") for o in outcomes):
        raise typer.Exit(EXIT_ENFORCEMENT)


@app.command()
@handle_errors
def restore(
    run_id: str = typer.Argument(..., help="Run id printed by a scan or the kill-switch."),
    state: str | None = typer.Option(None, "--state", help="State URL holding the journal."),
    policy_path: Path | None = typer.Option(None, "--policy", help="Policy (provider settings)."),
) -> None:
    """Put every resource a run changed back to its journaled state."""
    from cloudcircuit.enforcement import restore_run
    from cloudcircuit.state import open_state

    policy = _policy(policy_path)
    store = open_state(_state_url(state, policy))
    try:
        providers = sorted({e.resource.provider for e in store.journal(run_id)})
        enforcers = {p: _enforcer(p, policy) for p in providers}
        with console.status(f"restoring run {run_id}"):
            outcomes = restore_run(run_id, store, enforcers)
    finally:
        store.close()
    console.print(outcomes_table(f"restore {run_id}", outcomes))
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(EXIT_ENFORCEMENT)


@app.command()
@handle_errors
def runs(
    state: str | None = typer.Option(None, "--state", help="State URL holding the journal."),
    policy_path: Path | None = typer.Option(None, "--policy", help="Policy (its state URL)."),
    limit: int = typer.Option(20, help="How many runs, newest first."),
) -> None:
    """List journaled enforcement runs, newest first."""
    from cloudcircuit.state import open_state

    store = open_state(_state_url(state, _policy(policy_path)))
    try:
        table = Table(title="journaled runs", title_justify="left")
        for col in ("run", "actions", "done", "failed"):
            table.add_column(col)
        for run_id in store.runs(limit):
            after = [e for e in store.journal(run_id) if e.phase == "after"]
            table.add_row(
                run_id,
                str(len(after)),
                str(sum(e.status == "done" for e in after)),
                str(sum(e.status == "failed" for e in after)),
            )
    finally:
        store.close()
    console.print(table)
