"""The AWS enforcer in moto: every resource type, tag and zero actions, dry-run probes,
batching, idempotence, per-resource failures, journal and exact restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from cloudcircuit_aws.actions import AwsEnforcer
from cloudcircuit_aws.clients import Clients
from cloudcircuit_aws.fleet import seed_fleet
from cloudcircuit_aws.orgs import AccountSet

from cloudcircuit.decision import Decision
from cloudcircuit.enforcement import Limits, build_plan, execute_plan, restore_run
from cloudcircuit.providers import Resource, TargetSelector
from cloudcircuit.state import MemoryStore

DECISION = Decision(budget="ml", scope={}, action="block", severity="critical", reason="test")
TYPES = (
    "ec2:instance",
    "autoscaling:group",
    "ecs:service",
    "lambda:function",
    "rds:db",
    "eks:nodegroup",
)


@dataclass
class Sel:
    tags: dict[str, str] = field(default_factory=dict)

    def to_target(self) -> TargetSelector:
        return TargetSelector(tags=self.tags)


@dataclass
class Spec:
    action: str
    resource_types: tuple[str, ...] = ()
    selector: Sel = field(default_factory=lambda: Sel({"team": "ml"}))
    params: dict[str, Any] = field(default_factory=dict)
    provider: str = "aws"


def enforcer() -> AwsEnforcer:
    return AwsEnforcer(accounts=AccountSet(base=Clients()), regions=("us-east-1",))


def snapshot(enf: AwsEnforcer) -> dict[tuple[str, str], dict[str, Any]]:
    """State of every resource (ASG-launched instances are replaced on scaling: left out)."""
    found = enf.resolve(TargetSelector())
    return {
        (r.type, r.id): enf.capture(r) for r in found if "aws:autoscaling:groupName" not in r.tags
    }


def run(enf: AwsEnforcer, store: MemoryStore, spec: Spec, *, dry_run: bool = False) -> Any:
    plan = build_plan([(spec, DECISION)], {"aws": enf}, max_resources=Limits(100, 100.0))
    return plan, execute_plan(plan, store, dry_run=dry_run)


def test_asg_and_lambda_exact_values(aws: None) -> None:
    seed_fleet(with_rds_eks=False)
    enf, store = enforcer(), MemoryStore()
    plan, _ = run(enf, store, Spec("stop", ("autoscaling:group", "lambda:function")))
    asg = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["ml-training"]
    )["AutoScalingGroups"][0]
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (0, 0, 0)
    lam = boto3.client("lambda")
    assert (
        lam.get_function_concurrency(FunctionName="ml-notify")["ReservedConcurrentExecutions"] == 0
    )
    restore_run(plan.run_id, store, {"aws": enf})
    asg = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["ml-training"]
    )["AutoScalingGroups"][0]
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (1, 5, 10)
    assert (
        lam.get_function_concurrency(FunctionName="ml-batch")["ReservedConcurrentExecutions"] == 50
    )
    # "none" stays none: the concurrency setting is deleted again
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="ml-notify"
    )


def test_dry_run_probes_and_changes_nothing(aws: None) -> None:
    fleet = seed_fleet(with_rds_eks=False)
    enf, store = enforcer(), MemoryStore()
    before = snapshot(enf)
    _, outcomes = run(enf, store, Spec("stop", ("ec2:instance", "autoscaling:group")), dry_run=True)
    assert {o.status for o in outcomes} == {"dry_run"}
    ids = {o.resource.id for o in outcomes}
    assert fleet.instances["ml-gpu-1"] in ids and fleet.instances["ml-keep"] not in ids
    assert snapshot(enf) == before
    assert store.journal((outcomes and "x") or "y") == []
    calls = enf.accounts.base.calls
    assert calls[("ec2", "StopInstances")] == 1  # the DryRun probe, nothing else


def test_one_bad_resource_is_reported_alone(aws: None) -> None:
    fleet = seed_fleet(with_rds_eks=False)
    enf = enforcer()
    good = [r for r in enf.resolve(TargetSelector(("ec2:instance",), {"team": "ml"}))]
    ghost = Resource(
        provider="aws", type="ec2:instance", id="i-0000000000000dead", region="us-east-1"
    )
    outcomes = enf.apply_batch("stop", [*good, ghost], {}, dry_run=False)
    status = {o.resource.id: o.status for o in outcomes}
    assert status[ghost.id] == "failed"
    assert status[fleet.instances["ml-gpu-1"]] == "done"
    outcomes = enf.apply_batch("tag", [ghost], {"key": "a", "value": "b"}, dry_run=False)
    assert outcomes[0].status == "failed" and outcomes[0].error


def test_tagging_and_stopping_batch_at_the_minimum(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real limits are 1,000 IDs per call; smaller ones keep moto fast with the same logic
    monkeypatch.setattr("cloudcircuit_aws.actions.TAG_BATCH_EC2", 10)
    monkeypatch.setattr("cloudcircuit_aws.resources.EC2_BATCH", 10)
    ec2 = boto3.client("ec2")
    ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=21,
        MaxCount=21,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "bulk"}]}
        ],
    )
    enf = enforcer()
    found = enf.resolve(TargetSelector(("ec2:instance",), {"team": "bulk"}))
    assert len(found) == 21
    tagged = enf.apply_batch("tag", found, {"key": "cc", "value": "1"}, dry_run=False)
    stopped = enf.apply_batch("stop", found, {}, dry_run=False)
    assert {o.status for o in tagged} == {"done"} and {o.status for o in stopped} == {"done"}
    calls = enf.accounts.base.calls
    assert calls[("ec2", "CreateTags")] == 3  # ceil(21 / 10)
    assert calls[("ec2", "StopInstances")] == 3


def test_unknown_type_is_a_clear_error(aws: None) -> None:
    from cloudcircuit.errors import InputError

    with pytest.raises(InputError, match="s3:bucket"):
        enforcer().resolve(TargetSelector(("s3:bucket",)))


def test_organization_accounts_bounded_and_failures_reported(aws: None) -> None:
    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    made = [
        org.create_account(AccountName=f"member{i}", Email=f"m{i}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for i in range(3)
    ]
    accounts = AccountSet(
        base=Clients(), role_name="CloudCircuitEnforcer", organization=True, max_workers=2
    )
    members = accounts.members()
    assert set(made) <= set(members)
    # resources in one member account, created through the assumed role
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{made[0]}:role/CloudCircuitEnforcer", RoleSessionName="seed"
    )["Credentials"]
    boto3.client(
        "ec2",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).run_instances(
        ImageId="ami-12c6146b",
        MinCount=2,
        MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ml"}]}],
    )
    enf = AwsEnforcer(accounts=accounts)
    found = enf.resolve(TargetSelector(("ec2:instance",), {"team": "ml"}))
    assert {r.account for r in found} == {made[0]} and len(found) == 2
    outcomes = enf.apply_batch("stop", found, {}, dry_run=False)
    assert {o.status for o in outcomes} == {"done"}

    def work(clients: Clients) -> str:
        if clients.account == made[1]:
            raise RuntimeError("AccessDenied")
        return clients.account or ""

    results, errors = accounts.map(work)
    assert made[1] not in results and made[0] in results
    assert errors == [f"account {made[1]}: AccessDenied"]
