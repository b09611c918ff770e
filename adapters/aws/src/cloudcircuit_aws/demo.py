"""``make demo``'s AWS part: the whole loop on an in-process AWS (moto), no account needed.

1. moto starts (account 222222222222, the demo's ML research account); Cost Explorer is
   seeded with the demo spend (:func:`.ce_emulator.demo_charges`) request by request;
2. a tagged fleet is created: EC2 instances, Auto Scaling groups, ECS services, Lambda
   functions (team ml / web / data / platform) and one protected ml instance;
3. a scan of examples/policy.yaml, its source switched to Cost Explorer, runs WITH
   enforcement: the ml runaway blocks (ASG scaled to zero, ml instances stopped; the
   protected one left alone), the platform forecast throttles (ECS services tagged);
4. a before / after table, then ``restore`` of the run and the table again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cloudcircuit.providers import ActionOutcome, TargetSelector
from cloudcircuit_aws.actions import AwsEnforcer
from cloudcircuit_aws.ce_emulator import CostExplorerSeeder, demo_charges
from cloudcircuit_aws.clients import Clients
from cloudcircuit_aws.costs import CostExplorerSource
from cloudcircuit_aws.fleet import seed_fleet
from cloudcircuit_aws.orgs import AccountSet

__all__ = [
    "DEMO_ACCOUNT",
    "demo_policy",
    "moto_aws",
    "run_moto_demo",
]

DEMO_ACCOUNT = "222222222222"
_TYPES = ("ec2:instance", "autoscaling:group", "ecs:service", "lambda:function")


@contextmanager
def moto_aws(account: str = DEMO_ACCOUNT) -> Iterator[None]:
    """An in-process moto AWS with fake credentials; the environment is put back after."""
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in ("MOTO_ACCOUNT_ID", "AWS_DEFAULT_REGION", "AWS_PROFILE")}
    os.environ["MOTO_ACCOUNT_ID"] = account
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)
    try:
        with mock_aws():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _find_policy() -> Path:
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / "examples" / "policy.yaml"
        if candidate.is_file():
            return candidate
    from cloudcircuit.errors import InputError

    raise InputError("examples/policy.yaml not found: run the demo from a cloudcircuit checkout")


def demo_policy(policy_path: Path | None = None) -> Any:
    """examples/policy.yaml with its source switched to Cost Explorer and no alert sinks."""
    from cloudcircuit.policy import load_policy
    from cloudcircuit.policy.models import SourceConfig

    policy = load_policy(policy_path or _find_policy())
    return policy.model_copy(
        update={
            "sources": [SourceConfig(name="aws", type="aws", settings={"region": "us-east-1"})],
            "alerts": [],
            "state": "memory://",
        }
    )


def _describe(state: dict[str, Any]) -> str:
    """Short text of a state: run state, capacity (ASG min/desired/max), concurrency, marks."""
    parts = []
    if "state" in state:
        parts.append(str(state["state"]))
    if "status" in state:
        parts.append(str(state["status"]))
    if "desired" in state:
        if "min" in state:
            parts.append(f"{state['min']}/{state['desired']}/{state['max']}")
        else:
            parts.append(f"desired {state['desired']}")
    if "reserved_concurrency" in state:
        rc = state["reserved_concurrency"]
        parts.append(f"reserved {'none' if rc is None else rc}")
    for key, value in dict(state.get("tags", {})).items():
        if key.startswith("cloudcircuit:"):
            label = {"protect": "protected"}.get(key.split(":", 1)[1], key.split(":", 1)[1])
            parts.append(label if value == "true" else f"{key}={value}")
    return ", ".join(parts)


def _snapshot(enforcer: AwsEnforcer) -> dict[tuple[str, str], tuple[str, str, str]]:
    out: dict[tuple[str, str], tuple[str, str, str]] = {}
    for r in enforcer.resolve(TargetSelector(resource_types=_TYPES)):
        if "aws:autoscaling:groupName" in r.tags:
            continue  # instances the ASG launched: they come and go with its capacity
        label = r.name or r.id
        out[(r.type, r.id)] = (label, r.tags.get("team", ""), _describe(enforcer.capture(r)))
    return out


def _table(
    title: str,
    before: dict[tuple[str, str], tuple[str, str, str]],
    after: dict[tuple[str, str], tuple[str, str, str]],
) -> Table:
    table = Table(title=title, title_justify="left", caption="ASG capacity: min/desired/max")
    for col in ("type", "resource", "team", "before", "after"):
        table.add_column(col)
    for key in sorted(before, key=lambda k: (k[0], before[k][0])):
        label, team, was = before[key]
        now = after.get(key, (label, team, "(gone)"))[2]
        style = "bold yellow" if now != was else ""
        table.add_row(key[0], label, team, was, now, style=style)
    return table


def run_moto_demo(
    console: Console,
    *,
    data_dir: Path,
    now: datetime | None = None,
    policy_path: Path | None = None,
) -> dict[str, Any]:
    """Run the AWS loop in moto, print it, and return a summary (also written as JSON to
    ``data_dir/aws-demo.json``)."""
    from cloudcircuit.enforcement import restore_run
    from cloudcircuit.scan import run_scan
    from cloudcircuit.state import MemoryStore

    at = now or datetime.now(UTC)
    policy = demo_policy(policy_path)
    with moto_aws():
        seeder = CostExplorerSeeder(
            demo_charges(at, days=policy.defaults.lookback_days + 40), now=at
        )
        stop_seeding = seeder.attach_to_new_clients()
        try:
            seed_fleet(with_rds_eks=False)
            store = MemoryStore()
            clients = Clients(region="us-east-1")
            enforcer = AwsEnforcer(accounts=AccountSet(base=clients), regions=("us-east-1",))
            source = CostExplorerSource(clients=clients, now=at, store=store)
            before = _snapshot(enforcer)
            result = run_scan(
                policy,
                enforce=True,
                now=at,
                sources={"aws": source},
                store=store,
                enforcers={"aws": enforcer},
                console=console,
            )
            after = _snapshot(enforcer)
            for decision in result.decisions:
                if decision.action != "allow":
                    console.print(
                        f"[bold]{decision.budget}[/] {dict(decision.scope) or ''} -> "
                        f"[bold red]{decision.action}[/]: {decision.reason}"
                    )
            for error in result.errors:
                console.print(f"[yellow]scan error:[/] {error.to_dict()}")
            stats = source.scan_cost_usd
            console.print(
                f"Cost Explorer: {source.scan_requests} requests, USD {stats:.2f} "
                f"(cap USD {source.api_budget_usd:.2f})"
            )
            console.print(_table(f"run {result.run_id}: enforced", before, after))
            restored: list[ActionOutcome] = []
            if result.plan is not None and any(o.status == "done" for o in result.outcomes):
                restored = restore_run(result.run_id, store, {"aws": enforcer})
            back = _snapshot(enforcer)
            console.print(_table(f"cloudcircuit restore {result.run_id}", after, back))
        finally:
            stop_seeding()
    summary = {
        "run_id": result.run_id,
        "decisions": {d.budget + str(dict(d.scope)): d.action for d in result.decisions},
        "outcomes": [
            {"type": o.resource.type, "id": o.resource.id, "action": o.action, "status": o.status}
            for o in result.outcomes
        ],
        "restored": [{"id": o.resource.id, "status": o.status} for o in restored],
        "ce_requests": source.scan_requests,
        "back_to_before": back == before,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "aws-demo.json").write_text(json.dumps(summary, indent=2))
    console.print(
        "[green]every resource is back to its state before the run[/]"
        if summary["back_to_before"]
        else "[red]some resources differ from their state before the run[/]"
    )
    return summary
