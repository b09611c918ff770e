"""Every AWS operation the adapter calls is granted by the Terraform IAM policy, and every
action granted is used.

Calls are recorded through botocore's ``before-call`` event on every client the adapter
builds (cloudcircuit_aws.clients.observe_calls): the whole session's calls (conftest's
RECORDED) plus a workload here that exercises every path, so the check also holds when this
file runs alone.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from aws_recorder import RECORDED
from cloudcircuit_aws.actions import AwsEnforcer, _delete_tags
from cloudcircuit_aws.ce_emulator import CostExplorerSeeder, demo_charges
from cloudcircuit_aws.clients import Clients, observe_calls
from cloudcircuit_aws.costs import CostExplorerSource
from cloudcircuit_aws.fleet import seed_fleet
from cloudcircuit_aws.orgs import AccountSet
from test_state_demo import make_table
from test_terraform import MODULE, load_tf

from cloudcircuit.providers import SpendQuery, TargetSelector
from cloudcircuit.state import open_state

#: boto3 service name -> IAM prefix, where they differ
IAM_PREFIX = {"resourcegroupstaggingapi": "tag"}


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


def granted() -> tuple[set[str], set[str]]:
    """(actions for operations we call, actions implied by the Tagging API)."""
    locals_ = load_tf(MODULE / "main.tf")["locals"][0]
    called = {
        *locals_["read_actions"],
        *locals_["state_actions"],
        *locals_["organization_actions"],
        *locals_["enforce_actions"],
    }
    return called, set(locals_["rgta_implied_actions"])


def workload() -> None:
    """Exercise every AWS path of the adapter once, in moto."""
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    seed_fleet()
    clients = Clients()
    seeder = CostExplorerSeeder(demo_charges(now, days=10), now=now)
    seeder.attach(clients.client("ce"))
    CostExplorerSource(clients=clients, now=now).fetch(
        SpendQuery(start=now - timedelta(days=5), end=now, group_by=("service",))
    )
    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    org.create_account(AccountName="m", Email="m@example.com")
    accounts = AccountSet(base=clients, role_name="CloudCircuitEnforcer", organization=True)
    enf = AwsEnforcer(accounts=AccountSet(base=clients))
    AwsEnforcer(accounts=accounts).resolve(TargetSelector(("ec2:instance",)))
    found = enf.resolve(TargetSelector(tags={"team": "ml"}))
    ec2 = [r for r in found if r.type == "ec2:instance"]
    enf.apply_batch("stop", ec2, {}, dry_run=True)
    enf.apply_batch("tag", ec2, {"key": "k", "value": "v"}, dry_run=True)
    one_per_type = {r.type: r for r in found}
    for r in one_per_type.values():
        before = enf.capture(r)
        enf.apply("tag", r, {"key": "cc", "value": "1"}, dry_run=False)
        enf.apply("scale_down", r, {}, dry_run=False)
        enf.restore(r, before)
        if r.type == "eks:nodegroup":  # moto cannot tag node groups: call untag explicitly
            with contextlib.suppress(Exception):
                _delete_tags(clients, r, ["cc"])
    make_table("iam")
    store = open_state("dynamodb://iam")
    store.set("a", 1)
    store.get("a")
    store.incr("n")
    store.delete("a")
    store.runs()


def test_every_operation_granted_and_every_grant_used(aws: None, tmp_path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    remove = observe_calls(lambda service, op: seen.add((service, op)))
    try:
        workload()
    finally:
        remove()
    used = {iam_action(s, o) for s, o in seen | RECORDED}
    called, implied = granted()
    assert used - called == set(), "operations used but not granted by terraform/modules/aws"
    assert called - used == set(), "actions granted but never used by the adapter"
    assert not implied & used, "implied Tagging API permissions are never called directly"
    assert {a.split(":")[1] for a in implied} >= {"TagResource", "AddTagsToResource"}
