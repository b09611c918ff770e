"""DynamoDB state store (conditional writes) in moto, the state entry point, the moto demo,
and the property test over every resource type."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudcircuit_aws.actions import AwsEnforcer
from cloudcircuit_aws.clients import Clients
from cloudcircuit_aws.fleet import seed_fleet
from cloudcircuit_aws.orgs import AccountSet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cloudcircuit.decision import Decision
from cloudcircuit.enforcement import Limits, build_plan, execute_plan, restore_run
from cloudcircuit.errors import StateError
from cloudcircuit.providers import JournalEntry, Resource, StateStore, TargetSelector
from cloudcircuit.state import open_state


def make_table(name: str = "cc-state") -> None:
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_dynamodb_store_through_open_state(aws: None) -> None:
    make_table()
    store = open_state("dynamodb://cc-state?region=us-east-1")
    assert isinstance(store, StateStore)
    assert store.get("k") is None
    store.set("k", {"a": [1, 2]})
    assert store.get("k") == {"a": [1, 2]}
    assert store.set_if_absent("lock", "me") is True
    assert store.set_if_absent("lock", "you") is False
    assert store.get("lock") == "me"
    # an expired key counts as absent (DynamoDB TTL deletes lazily)
    store.set("old", 1, ttl=-5)
    assert store.get("old") is None and store.set_if_absent("old", 2) is True
    assert store.incr("n") == 1 and store.incr("n", 5) == 6
    store.delete("k")
    assert store.get("k") is None
    res = Resource(
        provider="aws", type="ec2:instance", id="i-1", region="us-east-1", tags={"a": "b"}
    )
    at = datetime(2026, 11, 23, tzinfo=UTC)
    for run in ("r1", "r2"):
        store.append_journal(
            JournalEntry(run, 1, "before", "stop", res, {"state": "running"}, "planned", at)
        )
        store.append_journal(
            JournalEntry(run, 1, "after", "stop", res, {"state": "stopped"}, "done", at)
        )
    entries = store.journal("r1")
    assert [(e.phase, e.state["state"]) for e in entries] == [
        ("before", "running"),
        ("after", "stopped"),
    ]
    assert entries[0].resource == res
    assert store.runs() == ["r2", "r1"]
    with pytest.raises(StateError, match="already written"):
        store.append_journal(JournalEntry("r1", 1, "before", "stop", res, {}, "planned", at))
    store.close()


def test_dynamodb_missing_table_is_a_state_error(aws: None) -> None:
    store = open_state("dynamodb://absent")
    with pytest.raises(StateError, match="absent"):
        store.get("x")


def test_moto_demo_enforces_and_restores(tmp_path: Path) -> None:
    from cloudcircuit_aws.demo import run_moto_demo

    console = Console(record=True, width=140)
    summary = run_moto_demo(console, data_dir=tmp_path, now=datetime(2026, 11, 23, 12, tzinfo=UTC))
    done = {(o["type"], o["action"]) for o in summary["outcomes"] if o["status"] == "done"}
    assert ("autoscaling:group", "scale_down") in done
    assert ("ec2:instance", "stop") in done
    assert ("ecs:service", "tag") in done
    assert summary["back_to_before"] is True
    assert summary["restored"] and {r["status"] for r in summary["restored"]} == {"done"}
    text = console.export_text()
    assert "ml-keep" in text and "0/0/0" in text and "protect" in text
    assert (tmp_path / "aws-demo.json").is_file()


TYPES = (
    "ec2:instance",
    "autoscaling:group",
    "ecs:service",
    "lambda:function",
    "rds:db",
    "eks:nodegroup",
)


DECISION = Decision(budget="p", scope={}, action="block", severity="critical", reason="test")


class _Sel:
    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags

    def to_target(self) -> TargetSelector:
        return TargetSelector(tags=self.tags)


class _Spec:
    def __init__(self, action: str, type_: str, tags: dict[str, str]) -> None:
        self.action = action
        self.provider = "aws"
        self.resource_types = (type_,)
        self.selector = _Sel(tags)
        self.params = {"key": "cloudcircuit:throttled", "value": "true"}


def _snapshot(enf: AwsEnforcer, type_: str) -> dict[str, Any]:
    found = enf.resolve(TargetSelector((type_,)))
    return {r.id: enf.capture(r) for r in found if "aws:autoscaling:groupName" not in r.tags}


def test_property_protected_never_planned_and_restore_roundtrip() -> None:
    """Random protect tags, selectors, actions and types: the protect tag always excludes,
    and restore(enforce(x)) == x for every supported resource type."""
    from cloudcircuit_aws.actions import _delete_tags
    from cloudcircuit_aws.demo import moto_aws
    from cloudcircuit_aws.state import DynamoDBStateStore

    with moto_aws():
        seed_fleet()
        clients = Clients()
        enf = AwsEnforcer(accounts=AccountSet(base=clients), regions=("us-east-1",))
        make_table("prop")
        acted: set[str] = set()
        store = DynamoDBStateStore("prop", clients=clients)

        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            type_=st.sampled_from(TYPES),
            action=st.sampled_from(["tag", "scale_down", "stop"]),
            team=st.sampled_from(["ml", "web", "data", "platform", "*"]),
            protect=st.lists(st.booleans(), min_size=8, max_size=8),
        )
        def check(type_: str, action: str, team: str, protect: list[bool]) -> None:
            # moto 5.2 cannot tag EKS node groups (TagResource knows clusters only)
            assume(not (type_ == "eks:nodegroup" and action == "tag"))
            resources = [
                r
                for r in enf.resolve(TargetSelector((type_,)))
                if "aws:autoscaling:groupName" not in r.tags
            ]
            if type_ != "eks:nodegroup":  # moto cannot tag node groups
                for r, flag in zip(resources, protect, strict=False):
                    if flag:
                        enf.apply_batch(
                            "tag",
                            [r],
                            {"key": "cloudcircuit:protect", "value": "true"},
                            dry_run=False,
                        )
                    elif "cloudcircuit:protect" in r.tags:
                        _delete_tags(clients, r, ["cloudcircuit:protect"])
            before = _snapshot(enf, type_)
            plan = build_plan(
                [(_Spec(action, type_, {"team": team}), DECISION)],
                {"aws": enf},
                max_resources=Limits(100, 100.0),
            )
            for planned in plan.actions:
                assert before[planned.resource.id]["tags"].get("cloudcircuit:protect") != "true"
            outcomes = execute_plan(plan, store, dry_run=False)
            assert all(o.status in ("done", "unchanged") for o in outcomes), outcomes
            if plan.actions:
                acted.update(o.resource.type for o in outcomes if o.status == "done")
                restore_run(plan.run_id, store, {"aws": enf})
            assert _snapshot(enf, type_) == before

        check()
        assert len(acted) >= 3, acted  # the examples really enforced and restored
