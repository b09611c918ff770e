"""enforcement.py against a fake provider and an in-test dict state store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcircuit.decision import Decision
from cloudcircuit.enforcement import (
    Limits,
    build_plan,
    execute_plan,
    kill_switch_plan,
    new_run_id,
    parse_protect_tag,
    restore_run,
)
from cloudcircuit.errors import EnforcementError, InputError, RestoreError, SafetyLimitError
from cloudcircuit.providers import ActionOutcome, JournalEntry, Resource, TargetSelector


class DictStore:
    """The StateStore protocol over dicts (enough for the journal)."""

    def __init__(self) -> None:
        self.kv: dict[str, Any] = {}
        self.entries: list[JournalEntry] = []

    def get(self, key: str) -> Any | None:
        return self.kv.get(key)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        self.kv[key] = value

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool:
        if key in self.kv:
            return False
        self.kv[key] = value
        return True

    def incr(self, key: str, amount: int = 1) -> int:
        self.kv[key] = int(self.kv.get(key, 0)) + amount
        return int(self.kv[key])

    def delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def append_journal(self, entry: JournalEntry) -> None:
        self.entries.append(entry)

    def journal(self, run_id: str) -> list[JournalEntry]:
        return [e for e in self.entries if e.run_id == run_id]

    def runs(self, limit: int = 20) -> list[str]:
        return sorted({e.run_id for e in self.entries}, reverse=True)[:limit]

    def close(self) -> None:
        pass


class FakeEnforcer:
    """Resources with a capacity; stop/scale_down set it to 0, tag sets a tag."""

    provider = "fake"

    def __init__(self, resources: dict[str, tuple[dict[str, str], int]]) -> None:
        self.state = {
            rid: {"capacity": cap, "tags": dict(tags)} for rid, (tags, cap) in resources.items()
        }
        self.fail: set[str] = set()
        self.calls = 0

    def _res(self, rid: str) -> Resource:
        return Resource(provider="fake", type="vm", id=rid, tags=dict(self.state[rid]["tags"]))

    def resolve(self, selector: TargetSelector) -> list[Resource]:
        return [r for r in (self._res(rid) for rid in sorted(self.state)) if selector.matches(r)]

    def capture(self, resource: Resource) -> dict[str, Any]:
        s = self.state[resource.id]
        return {"capacity": s["capacity"], "tags": dict(s["tags"])}

    def apply(
        self, action: str, resource: Resource, params: Mapping[str, Any], *, dry_run: bool
    ) -> ActionOutcome:
        before = self.capture(resource)
        if resource.id in self.fail:
            raise EnforcementError(f"{resource.id}: access denied")
        if dry_run:
            return ActionOutcome(resource, action, "dry_run", before=before, after=before)
        s = self.state[resource.id]
        if action == "tag":
            if s["tags"].get(params["key"]) == params["value"]:
                return ActionOutcome(resource, action, "unchanged", before=before, after=before)
            s["tags"][params["key"]] = params["value"]
        else:
            if s["capacity"] == 0:
                return ActionOutcome(resource, action, "unchanged", before=before, after=before)
            s["capacity"] = 0
        self.calls += 1
        return ActionOutcome(resource, action, "done", before=before, after=self.capture(resource))

    def restore(self, resource: Resource, before: Mapping[str, Any]) -> ActionOutcome:
        current = self.capture(resource)
        if current == dict(before):
            return ActionOutcome(resource, "restore", "unchanged", before=current, after=current)
        self.state[resource.id] = {"capacity": before["capacity"], "tags": dict(before["tags"])}
        return ActionOutcome(resource, "restore", "done", before=current, after=dict(before))


@dataclass
class Sel:
    tags: dict[str, str] = field(default_factory=dict)

    def to_target(self) -> TargetSelector:
        return TargetSelector(tags=self.tags)


@dataclass
class Spec:
    action: str
    provider: str = "fake"
    resource_types: Sequence[str] = ()
    selector: Sel = field(default_factory=Sel)
    params: Mapping[str, Any] = field(default_factory=dict)


@pytest.fixture(params=["dict", "memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """The journal on the in-test dict store and on the real memory:// and sqlite stores."""
    if request.param == "dict":
        yield DictStore()
        return
    from cloudcircuit.state import open_state

    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'state.db'}"
    opened = open_state(url)
    yield opened
    opened.close()


DECISION = Decision(budget="ml", scope={}, action="block", severity="critical", reason="runaway")
PROTECT = {"cloudcircuit:protect": "true"}


def fleet() -> FakeEnforcer:
    return FakeEnforcer(
        {
            "a": ({"team": "ml"}, 5),
            "b": ({"team": "ml"}, 3),
            "p": ({"team": "ml", **PROTECT}, 2),
            "c": ({"team": "web"}, 4),
        }
    )


def test_plan_excludes_protected_and_dedupes() -> None:
    enf = fleet()
    spec = Spec("stop", selector=Sel({"team": "ml"}))
    plan = build_plan(
        [(spec, DECISION), (spec, DECISION)], {"fake": enf}, max_resources=Limits(10, 100.0)
    )
    assert [a.resource.id for a in plan.actions] == ["a", "b"]
    assert [r.id for r in plan.protected] == ["p"]
    assert plan.to_dict()["protected"][0]["id"] == "p"


def test_max_resources_count_aborts_before_any_action() -> None:
    enf = fleet()
    with pytest.raises(SafetyLimitError, match=r"max_resources.count=1"):
        build_plan(
            [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
            {"fake": enf},
            max_resources=Limits(count=1, percent=100.0),
        )
    assert enf.calls == 0


def test_max_resources_percent_of_population() -> None:
    enf = fleet()
    # 2 of 4 vms = 50 %
    with pytest.raises(SafetyLimitError, match=r"2 of 4 resources \(50.0%\)"):
        build_plan(
            [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
            {"fake": enf},
            max_resources=Limits(count=10, percent=40.0),
        )
    plan = build_plan(
        [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
        {"fake": enf},
        max_resources=Limits(count=10, percent=50.0),
    )
    assert len(plan.actions) == 2
    assert plan.populations == {"fake:stop:any": 4}


def test_unknown_provider_and_action() -> None:
    with pytest.raises(EnforcementError, match="provider 'nope'"):
        build_plan([(Spec("stop", provider="nope"), DECISION)], {})
    with pytest.raises(InputError, match="'explode'"):
        build_plan([(Spec("explode"), DECISION)], {"fake": fleet()})


def test_execute_journals_and_restores_exactly(store: Any) -> None:
    enf = fleet()
    before = {rid: enf.capture(enf._res(rid)) for rid in enf.state}
    plan = build_plan(
        [
            (
                Spec("tag", selector=Sel({"team": "ml"}), params={"key": "cc", "value": "1"}),
                DECISION,
            ),
            (Spec("stop", selector=Sel({"team": "ml"})), DECISION),
        ],
        {"fake": enf},
        max_resources=Limits(10, 100.0),
        run_id="run-1",
    )
    outcomes = execute_plan(plan, store, dry_run=False)
    assert [o.status for o in outcomes] == ["done", "done", "done", "done"]
    assert enf.state["a"]["capacity"] == 0 and enf.state["a"]["tags"]["cc"] == "1"
    assert enf.state["p"]["capacity"] == 2
    journal = store.journal("run-1")
    assert [e.phase for e in journal] == ["before"] * 2 + ["after"] * 2 + ["before"] * 2 + [
        "after"
    ] * 2
    # second run: idempotent
    again = execute_plan(
        build_plan(
            [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
            {"fake": enf},
            max_resources=Limits(10, 100.0),
        ),
        store,
        dry_run=False,
    )
    assert {o.status for o in again} == {"unchanged"}
    restored = restore_run("run-1", store, {"fake": enf})
    assert {o.status for o in restored} == {"done"}
    assert {rid: enf.capture(enf._res(rid)) for rid in enf.state} == before
    assert {o.status for o in restore_run("run-1", store, {"fake": enf})} == {"unchanged"}
    assert "run-1:restore" in store.runs()


def test_dry_run_changes_nothing_and_writes_no_journal() -> None:
    enf, store = fleet(), DictStore()
    plan = build_plan(
        [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
        {"fake": enf},
        max_resources=Limits(10, 100.0),
    )
    outcomes = execute_plan(plan, store, dry_run=True)
    assert {o.status for o in outcomes} == {"dry_run"}
    assert enf.state["a"]["capacity"] == 5
    assert store.entries == []


def test_one_failure_does_not_stop_the_others(store: Any) -> None:
    enf = fleet()
    enf.fail.add("a")
    plan = build_plan(
        [(Spec("stop", selector=Sel({"team": "ml"})), DECISION)],
        {"fake": enf},
        max_resources=Limits(10, 100.0),
        run_id="run-2",
    )
    outcomes = execute_plan(plan, store, dry_run=False)
    assert [(o.resource.id, o.status) for o in outcomes] == [("a", "failed"), ("b", "done")]
    assert "access denied" in (outcomes[0].error or "")
    # restore skips the failed one and restores the other
    restored = restore_run("run-2", store, {"fake": enf})
    assert [(o.resource.id, o.status) for o in restored] == [("b", "done")]


def test_enforce_needs_store_and_restore_needs_journal() -> None:
    plan = build_plan([], {"fake": fleet()})
    with pytest.raises(EnforcementError, match="state store"):
        execute_plan(plan, None, dry_run=False)
    with pytest.raises(RestoreError, match="no journal"):
        restore_run("missing", DictStore(), {})


def test_kill_switch_plan_uses_the_same_rails() -> None:
    enf = fleet()
    plan = kill_switch_plan(
        enf,
        action="stop",
        target=TargetSelector(tags={"team": "ml"}),
        max_resources=Limits(10, 100),
    )
    assert [a.resource.id for a in plan.actions] == ["a", "b"] and plan.protected
    assert plan.actions[0].budget == "kill-switch"
    with pytest.raises(InputError, match="refusing 'all'"):
        kill_switch_plan(enf, action="stop", target=TargetSelector())
    with pytest.raises(SafetyLimitError):
        kill_switch_plan(enf, action="stop", target=TargetSelector(tags={"team": "ml"}))


def test_protect_tag_parsing_and_run_ids() -> None:
    assert parse_protect_tag("cloudcircuit:protect=true") == ("cloudcircuit:protect", "true")
    assert parse_protect_tag("keep") == ("keep", None)
    with pytest.raises(InputError):
        parse_protect_tag("=x")
    assert new_run_id() != new_run_id()


tag_values = st.sampled_from(["ml", "web", "data"])


@settings(max_examples=80, deadline=None)
@given(
    resources=st.dictionaries(
        st.text("abcdef", min_size=1, max_size=4),
        st.tuples(
            st.fixed_dictionaries(
                {"team": tag_values},
                optional={"cloudcircuit:protect": st.sampled_from(["true", "false"])},
            ),
            st.integers(0, 9),
        ),
        max_size=12,
    ),
    wanted=tag_values,
    action=st.sampled_from(["stop", "scale_down", "tag"]),
)
def test_property_protected_never_planned_and_restore_roundtrip(
    resources: dict[str, tuple[dict[str, str], int]], wanted: str, action: str
) -> None:
    enf, store = FakeEnforcer(resources), DictStore()
    before = {rid: enf.capture(enf._res(rid)) for rid in enf.state}
    spec = Spec(action, selector=Sel({"team": wanted}), params={"key": "cc", "value": "x"})
    plan = build_plan([(spec, DECISION)], {"fake": enf}, max_resources=Limits(100, 100.0))
    assert all(a.resource.tags.get("cloudcircuit:protect") != "true" for a in plan.actions)
    execute_plan(plan, store, dry_run=False)
    if plan.actions:
        restore_run(plan.run_id, store, {"fake": enf})
    assert {rid: enf.capture(enf._res(rid)) for rid in enf.state} == before
