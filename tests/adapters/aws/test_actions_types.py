"""Every resource type against ONE moto fleet (seeded once per module): zero and tag actions,
idempotent re-runs, and an exact restore that leaves the fleet as it was for the next test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudcircuit_aws.fleet import Fleet, seed_fleet
from test_actions import TYPES, Spec, enforcer, run, snapshot

from cloudcircuit.enforcement import restore_run
from cloudcircuit.state import MemoryStore


@pytest.fixture(scope="module")
def shared_fleet() -> Iterator[Fleet]:
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "MOTO_ACCOUNT_ID"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield seed_fleet()


@pytest.mark.parametrize("resource_type", TYPES)
def test_zero_then_restore_exactly(shared_fleet: Fleet, resource_type: str) -> None:
    enf, store = enforcer(), MemoryStore()
    before = snapshot(enf)
    plan, outcomes = run(enf, store, Spec("scale_down", (resource_type,)))
    assert outcomes and {o.status for o in outcomes} == {"done"}, outcomes
    assert all(o.resource.type == resource_type for o in outcomes)
    assert all(o.resource.tags.get("cloudcircuit:protect") != "true" for o in outcomes)
    states = [enf.capture(o.resource) for o in outcomes]
    for state in states:
        assert (
            state.get("state") in ("stopping", "stopped")
            or state.get("status") in ("stopping", "stopped")
            or state.get("desired") == 0
            or state.get("reserved_concurrency") == 0
        ), state
    # idempotent: the same block again changes nothing
    _, again = run(enf, store, Spec("scale_down", (resource_type,)))
    assert {o.status for o in again} == {"unchanged"}
    restored = restore_run(plan.run_id, store, {"aws": enf})
    assert {o.status for o in restored} == {"done"}
    assert snapshot(enf) == before


@pytest.mark.parametrize("resource_type", TYPES)
def test_tag_then_restore_removes_the_tag(shared_fleet: Fleet, resource_type: str) -> None:
    if resource_type == "eks:nodegroup":
        pytest.skip("moto 5.2's EKS TagResource tags clusters only, not managed node groups")
    enf, store = enforcer(), MemoryStore()
    before = snapshot(enf)
    spec = Spec("tag", (resource_type,), params={"key": "cloudcircuit:throttled", "value": "true"})
    plan, outcomes = run(enf, store, spec)
    assert outcomes and {o.status for o in outcomes} == {"done"}, outcomes
    for o in outcomes:
        assert enf.capture(o.resource)["tags"]["cloudcircuit:throttled"] == "true"
    _, again = run(enf, store, spec)
    assert {o.status for o in again} == {"unchanged"}
    restore_run(plan.run_id, store, {"aws": enf})
    assert snapshot(enf) == before
