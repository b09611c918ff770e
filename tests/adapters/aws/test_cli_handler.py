"""The kill-switch / restore / runs CLI and the Lambda handler, end to end in moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudcircuit_aws.ce_emulator import CostExplorerSeeder, demo_charges
from cloudcircuit_aws.fleet import seed_fleet
from cloudcircuit_aws.handler import budget_names_from_sns, classify, handler
from typer.testing import CliRunner

from cloudcircuit.cli.app import app

EVENTS = Path(__file__).resolve().parents[2] / "events"
runner = CliRunner()


def states(fleet: Any) -> dict[str, str]:
    ec2 = boto3.client("ec2")
    out = {}
    for name, iid in fleet.instances.items():
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        out[name] = inst["State"]["Name"]
    return out


def test_kill_switch_dry_run_confirm_enforce_runs_and_restore(aws: None, tmp_path: Path) -> None:
    fleet = seed_fleet(with_rds_eks=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    args = [
        "kill-switch",
        "--provider",
        "aws",
        "--selector",
        "tag:team=ml",
        "--type",
        "ec2:instance",
    ]
    dry = runner.invoke(app, [*args, "--state", state])
    assert dry.exit_code == 0, dry.output
    assert "ml-gpu-1" in dry.output and "protected" in dry.output and "dry-run" in dry.output
    assert set(states(fleet).values()) == {"running"}

    refused = runner.invoke(app, [*args, "--state", state, "--enforce"], input="n\n")
    assert refused.exit_code != 0 and set(states(fleet).values()) == {"running"}

    done = runner.invoke(app, [*args, "--state", state, "--enforce", "--yes"])
    assert done.exit_code == 0, done.output
    now = states(fleet)
    assert now["ml-gpu-1"] == "stopped" and now["ml-gpu-2"] == "stopped"
    assert now["ml-keep"] == "running" and now["web-1"] == "running"
    run_id = done.output.split("cloudcircuit restore ")[1].split()[0]

    listed = runner.invoke(app, ["runs", "--state", state])
    assert run_id in listed.output

    back = runner.invoke(app, ["restore", run_id, "--state", state])
    assert back.exit_code == 0, back.output
    assert set(states(fleet).values()) == {"running"}


def test_kill_switch_bad_input_is_exit_2(aws: None) -> None:
    bad = runner.invoke(app, ["kill-switch", "--selector", "team=ml"])
    assert bad.exit_code == 2 and "tag:KEY=VALUE" in bad.output
    bad = runner.invoke(app, ["kill-switch", "--selector", "tag:team=ml", "--action", "nuke"])
    assert bad.exit_code == 2


POLICY = """
version: 1
sources:
  - name: aws
    type: aws
    settings: {{region: us-east-1}}
state: "sqlite:///{state}"
enforcement:
  max_resources: {{count: 25, percent: 50}}
budgets:
  - name: ml-training
    scope: {{account: ["222222222222"], tags: {{team: ml}}}}
    period: month
    amount: 12000
    detectors:
      spike: {{enabled: true, multiplier: 1.5, action: block}}
    block:
      - action: stop
        provider: aws
        resource_types: [ec2:instance]
        selector: {{tags: {{team: ml}}}}
  - name: data-storage
    scope: {{account: ["111111111111"], service: ["Amazon Simple Storage Service"]}}
    period: month
    amount: 6000
"""


@pytest.fixture
def deployed(aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(state=tmp_path / "state.db"))
    monkeypatch.setenv("CLOUDCIRCUIT_POLICY", str(policy))
    monkeypatch.delenv("CLOUDCIRCUIT_ENFORCE", raising=False)
    seeder = CostExplorerSeeder(demo_charges(datetime.now(UTC), days=100), now=datetime.now(UTC))
    remove = seeder.attach_to_new_clients()
    yield seed_fleet(with_rds_eks=False)
    remove()


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_scheduled_scan_is_dry_run_by_default(deployed: Any) -> None:
    out = handler(load("eventbridge_schedule.json"))
    assert out["ok"] and out["kind"] == "schedule" and out["dry_run"] is True
    assert {d["budget"]: d["action"] for d in out["decisions"]}["ml-training"] == "block"
    assert {o["status"] for o in out["outcomes"]} == {"dry_run"}
    assert out["sources"][0]["requests"] >= 2
    assert set(states(deployed).values()) == {"running"}
    json.dumps(out)  # JSON-able for Lambda
    # the second scan reads the final buckets from the state store's cache
    again = handler(load("eventbridge_schedule.json"))
    assert out["sources"][0]["cached_buckets"] == 0
    assert again["sources"][0]["cached_buckets"] > 50


def test_budget_notification_scans_that_budget_and_enforces(
    deployed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = load("sns_budget_notification.json")
    assert classify(event) == "budget" and budget_names_from_sns(event) == ["ml-training"]
    monkeypatch.setenv("CLOUDCIRCUIT_ENFORCE", "true")
    out = handler(event)
    assert out["ok"], out
    assert [d["budget"] for d in out["decisions"]] == ["ml-training"]
    assert states(deployed)["ml-gpu-1"] == "stopped" and states(deployed)["ml-keep"] == "running"
    restored = handler({"action": "restore", "run_id": out["run_id"]})
    assert restored["ok"] and {o["status"] for o in restored["outcomes"]} == {"done"}
    assert set(states(deployed).values()) == {"running"}


def test_direct_invokes(deployed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = handler(load("invoke_scan.json"))
    assert scan["ok"] and [d["budget"] for d in scan["decisions"]] == ["ml-training"]
    kill = handler(load("invoke_kill_switch.json"))
    assert kill["ok"] and kill["dry_run"] is True
    assert {o["status"] for o in kill["outcomes"]} == {"dry_run"}
    monkeypatch.setenv("CLOUDCIRCUIT_ENFORCE", "true")
    kill = handler(load("invoke_kill_switch.json"))
    assert {o["status"] for o in kill["outcomes"]} == {"done"}
    event = load("invoke_restore.json") | {"run_id": kill["plan"]["run_id"]}
    assert handler(event)["ok"]
    assert set(states(deployed).values()) == {"running"}


def test_bad_events_are_clear_errors(deployed: Any) -> None:
    assert "unrecognized event" in handler({"hello": 1})["error"]
    sns = load("sns_budget_notification.json")
    sns["Records"][0]["Sns"]["Message"] = "Budget Name: nope"
    assert "no budget named 'nope'" in handler(sns)["error"]
    assert 'needs "run_id"' in handler({"action": "restore"})["error"]


def test_handler_import_is_light() -> None:
    """The Lambda cold start imports neither boto3 nor the core until the first event."""
    import subprocess
    import sys

    probe = (
        "import sys, cloudcircuit_aws.handler; "
        "mods = ('boto3', 'botocore', 'numpy', 'cloudcircuit'); "
        "print(sorted(m for m in mods if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
