"""scan.run_scan on in-memory series: a fake SpendSource (a test double of our own Protocol), a
fake Enforcer, the real batch engine, breaker, SQLite state store and enforcement module."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloudcircuit.errors import SourceError
from cloudcircuit.policy import Policy
from cloudcircuit.providers import (
    ActionOutcome,
    FetchResult,
    Resource,
    SourceStats,
    SpendQuery,
    SpendSource,
    TargetSelector,
)
from cloudcircuit.scan import BREAKER_NAME, ScanResult, period_bounds, run_scan
from cloudcircuit.spend import SpendSeries, bucket_range
from cloudcircuit.state import MemoryStore, SQLiteStore, load_breaker

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
RUNAWAY = {"sub_account": "222", "service": "EC2"}
RISING = {"sub_account": "111", "service": "ECS"}
HEALTHY = {"sub_account": "111", "service": "S3"}


def _runaway(start: datetime) -> float:
    return 180.0 * (6.0 if start >= datetime(2026, 11, 21, tzinfo=UTC) else 1.0)


def _rising(start: datetime) -> float:
    return 820.0 * 1.012 ** (-(NOW - start).days)


def _healthy(start: datetime) -> float:
    return 120.0 + (start.day % 3)


class FakeSource:
    """SpendSource over per-scope functions of the bucket start; honours filters and group_by.

    ``fail`` raises on the given call numbers (1-based); ``stale_after`` marks buckets ending
    after that time incomplete (the source's own lateness)."""

    def __init__(
        self,
        scopes: Mapping[tuple[tuple[str, str], ...], Callable[[datetime], float]],
        *,
        name: str = "fake",
        fail: Mapping[int, Exception] | None = None,
        stale_after: datetime | None = None,
        currency: str = "USD",
    ) -> None:
        self.name = name
        self.scopes = dict(scopes)
        self.fail = dict(fail or {})
        self.stale_after = stale_after
        self.currency = currency
        self.calls = 0
        self.queries: list[SpendQuery] = []

    def fetch(self, query: SpendQuery) -> FetchResult:
        self.calls += 1
        self.queries.append(query)
        if self.calls in self.fail:
            raise self.fail[self.calls]
        starts = tuple(bucket_range(query.start, query.end, query.granularity))
        groups: dict[tuple[str, ...], np.ndarray] = {}
        for key, fn in self.scopes.items():
            scope = dict(key)
            if any(scope.get(dim) not in allowed for dim, allowed in query.filters.items()):
                continue
            group = tuple(scope.get(d, "") for d in query.group_by)
            values = np.array([fn(s) for s in starts], dtype=np.float64)
            groups[group] = groups.get(group, np.zeros(len(starts))) + values
        complete = np.array(
            [
                self.stale_after is None or query.granularity.next(s) <= self.stale_after
                for s in starts
            ],
            dtype=np.bool_,
        )
        series = [
            SpendSeries(
                scope=dict(zip(query.group_by, group, strict=True)),
                granularity=query.granularity,
                starts=starts,
                amounts=amounts,
                complete=complete.copy(),
                currency=self.currency,
            )
            for group, amounts in sorted(groups.items())
        ]
        return FetchResult(series, SourceStats(source=self.name, requests=1, rows_read=len(starts)))


def _key(scope: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(scope.items()))


def demo_source(**kwargs: Any) -> FakeSource:
    return FakeSource(
        {_key(RUNAWAY): _runaway, _key(RISING): _rising, _key(HEALTHY): _healthy}, **kwargs
    )


class FakeEnforcer:
    """Enforcer over a fixed fleet; records every apply with its dry_run flag."""

    provider = "fake"

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.resources = list(resources)
        self.applied: list[tuple[str, str, bool]] = []
        self.state: dict[str, dict[str, Any]] = {r.id: {"running": True} for r in resources}

    def resolve(self, selector: TargetSelector) -> list[Resource]:
        return [r for r in self.resources if selector.matches(r)]

    def capture(self, resource: Resource) -> dict[str, Any]:
        return dict(self.state[resource.id])

    def apply(
        self, action: str, resource: Resource, params: Mapping[str, Any], *, dry_run: bool
    ) -> ActionOutcome:
        self.applied.append((action, resource.id, dry_run))
        before = dict(self.state[resource.id])
        if dry_run:
            return ActionOutcome(resource, action, "dry_run", before=before, after=before)
        self.state[resource.id] = {"running": False}
        return ActionOutcome(resource, action, "done", before=before, after={"running": False})

    def restore(self, resource: Resource, before: Mapping[str, Any]) -> ActionOutcome:
        self.state[resource.id] = dict(before)
        return ActionOutcome(resource, "restore", "done", after=dict(before))


FLEET = [
    Resource("fake", "vm", "vm-ml-1", tags={"team": "ml"}),
    Resource("fake", "vm", "vm-ml-2", tags={"team": "ml"}),
    Resource("fake", "vm", "vm-ml-keep", tags={"team": "ml", "cloudcircuit:protect": "true"}),
    Resource("fake", "vm", "vm-web-1", tags={"team": "web"}),
    Resource("fake", "vm", "vm-web-2", tags={"team": "web"}),
    Resource("fake", "vm", "vm-web-3", tags={"team": "web"}),
]


def make_policy(**overrides: Any) -> Policy:
    stop_ml = {"action": "stop", "provider": "fake", "selector": {"tags": {"team": "ml"}}}
    doc: dict[str, Any] = {
        "sources": [{"name": "fake", "type": "focus", "path": "/unused"}],
        "state": "memory://",
        "defaults": {"lookback_days": 60, "settle_hours": 24},
        "detectors": {
            "history": 28,
            "spike": {"enabled": True, "multiplier": 1.5, "min_baseline": 10},
            "forecast": {"enabled": True, "method": "run_rate"},
        },
        "breaker": {"failure_threshold": 3, "cooldown_scans": 2},
        "enforcement": {"max_resources": {"count": 25, "percent": 100}},
        "budgets": [
            {
                "name": "ml",
                "scope": {"account": ["222"]},
                "period": "month",
                "amount": 12000,
                "fail_closed": True,
                "detectors": {"spike": {"action": "block"}},
                "block": [stop_ml],
            },
            {
                "name": "platform",
                "scope": {"account": ["111"], "service": ["ECS"]},
                "period": "month",
                "amount": 22000,
                "detectors": {"forecast": {"breach_ratio": 0.9}},
            },
            {
                "name": "storage",
                "scope": {"account": ["111"], "service": ["S3"]},
                "period": "month",
                "amount": 6000,
            },
        ],
    }
    doc.update(overrides)
    return Policy.model_validate(doc)


def scan(policy: Policy | None = None, **kwargs: Any) -> ScanResult:
    kwargs.setdefault("sources", {"fake": demo_source()})
    kwargs.setdefault("store", MemoryStore())
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("enforcers", {"fake": FakeEnforcer(FLEET)})
    return run_scan(policy or make_policy(), **kwargs)


def by_budget(result: ScanResult) -> dict[str, Any]:
    return {d.budget: d for d in result.decisions}


# -- deciding ------------------------------------------------------------------------------


def test_runaway_blocks_rising_throttles_healthy_allows() -> None:
    result = scan()
    decisions = by_budget(result)
    assert decisions["ml"].action == "block"
    assert {e.rule for e in decisions["ml"].fired} >= {"spike"}
    assert decisions["platform"].action == "throttle"
    assert [e.rule for e in decisions["platform"].fired] == ["forecast"]
    assert decisions["storage"].action == "allow"
    assert decisions["storage"].reason == "all guardrails healthy"
    assert result.action == "block"
    assert result.errors == []
    # every scope carries the budget's selector for display and alerts
    assert decisions["ml"].scope == {"sub_account": "222"}


def test_queries_use_scope_filters_lookback_and_granularity() -> None:
    source = demo_source()
    scan(sources={"fake": source})
    first = source.queries[0]
    assert first.filters == {"sub_account": ("222",)}
    assert first.start == datetime(2026, 9, 24, tzinfo=UTC)  # 60 days back, floored
    assert first.end == datetime(2026, 11, 24, tzinfo=UTC)  # through today's bucket
    assert first.granularity.value == "day"


def test_anomaly_rules_judge_the_latest_complete_bucket_only() -> None:
    # a huge amount in today's partial bucket (and in yesterday, still settling) is not judged
    def late_spike(start: datetime) -> float:
        return 5000.0 if start >= datetime(2026, 11, 22, tzinfo=UTC) else 100.0

    source = FakeSource({_key(RUNAWAY): late_spike})
    policy = make_policy(
        budgets=[{"name": "ml", "scope": {"account": ["222"]}, "period": "month", "amount": 1e6}]
    )
    result = scan(policy, sources={"fake": source})
    spike = next(e for e in result.decisions[0].evidence if e.rule == "spike")
    assert not spike.fired
    assert spike.observed == 100.0  # Nov 21, the newest bucket that ended 24 h ago
    scope = result.scopes[0]
    assert scope.series.starts[-1] == datetime(2026, 11, 23, tzinfo=UTC)
    assert not scope.series.complete[-1] and not scope.series.complete[-2]
    assert scope.series.complete[-3]


def test_budget_counts_period_to_date_including_the_partial_bucket() -> None:
    policy = make_policy(
        budgets=[{"name": "daily", "scope": {"account": ["111"]}, "period": "day", "amount": 900}]
    )
    result = scan(policy)
    budget = next(e for e in result.decisions[0].evidence if e.rule == "budget")
    expected = _rising(datetime(2026, 11, 23, tzinfo=UTC)) + _healthy(
        datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert budget.observed == pytest.approx(expected)
    assert budget.fired and budget.action == "block"
    assert result.decisions[0].action == "block"


def test_forecast_numbers_follow_the_configured_method() -> None:
    p_start, _ = period_bounds(NOW, "month")
    complete_days = [p_start + timedelta(days=i) for i in range(21)]  # Nov 1..21 settled
    to_date = sum(_rising(d) for d in complete_days)
    rate = sum(_rising(d) for d in complete_days[-7:]) / 7
    result = scan()
    forecast = next(e for e in by_budget(result)["platform"].evidence if e.rule == "forecast")
    assert forecast.observed == pytest.approx(to_date + rate * 9)
    assert forecast.threshold == pytest.approx(0.9 * 22000)
    linear = make_policy(detectors={"forecast": {"method": "linear"}})
    result = scan(linear)
    forecast = next(e for e in by_budget(result)["platform"].evidence if e.rule == "forecast")
    assert forecast.observed == pytest.approx(to_date / 21 * 30)


def test_group_by_judges_each_group_separately() -> None:
    policy = make_policy(
        budgets=[{"name": "per-account", "period": "day", "amount": 2000, "group_by": ["account"]}]
    )
    result = scan(policy)
    scopes = {d.scope["sub_account"]: d.action for d in result.decisions}
    assert set(scopes) == {"111", "222"}
    assert scopes["222"] == "throttle"  # spike fires with the policy-level throttle action


def test_a_scope_with_no_spend_allows_and_says_so() -> None:
    policy = make_policy(
        budgets=[{"name": "ghost", "scope": {"account": ["999"]}, "period": "month", "amount": 5}]
    )
    result = scan(policy)
    assert result.decisions[0].action == "allow"
    assert result.decisions[0].reason == "no spend matched the scope"


def test_other_currency_than_the_budget_is_an_error_naming_the_scope() -> None:
    from cloudcircuit.errors import CurrencyMismatchError

    with pytest.raises(CurrencyMismatchError, match="budget 'ml' is in USD"):
        scan(sources={"fake": demo_source(currency="EUR")})


# -- enforcement ---------------------------------------------------------------------------


def test_dry_run_is_the_default_and_writes_no_journal() -> None:
    enforcer = FakeEnforcer(FLEET)
    store = MemoryStore()
    result = scan(store=store, enforcers={"fake": enforcer})
    assert result.dry_run
    assert result.plan is not None
    assert sorted(a.resource.id for a in result.plan.actions) == ["vm-ml-1", "vm-ml-2"]
    assert [r.id for r in result.plan.protected] == ["vm-ml-keep"]
    assert enforcer.applied and all(dry for _, _, dry in enforcer.applied)
    assert [o.status for o in result.outcomes] == ["dry_run", "dry_run"]
    assert store.journal(result.run_id) == []
    assert enforcer.state["vm-ml-1"] == {"running": True}


def test_enforce_applies_and_journals_before_and_after() -> None:
    enforcer = FakeEnforcer(FLEET)
    store = MemoryStore()
    result = scan(store=store, enforcers={"fake": enforcer}, enforce=True)
    assert not result.dry_run
    assert {(a, rid, dry) for a, rid, dry in enforcer.applied} == {
        ("stop", "vm-ml-1", False),
        ("stop", "vm-ml-2", False),
    }
    phases = [(e.resource.id, e.phase) for e in store.journal(result.run_id)]
    assert sorted(phases) == sorted(
        [("vm-ml-1", "before"), ("vm-ml-1", "after"), ("vm-ml-2", "before"), ("vm-ml-2", "after")]
    )


def test_safety_rail_aborts_the_plan_before_any_action() -> None:
    enforcer = FakeEnforcer(FLEET)
    policy = make_policy(enforcement={"max_resources": {"count": 1, "percent": 100}})
    result = scan(policy, enforcers={"fake": enforcer}, enforce=True)
    assert result.plan is None
    assert enforcer.applied == []
    assert [e.kind for e in result.errors] == ["enforcement"]
    assert "max_resources.count=1" in result.errors[0].message


def test_uninstalled_provider_is_listed_as_not_executable_with_the_package() -> None:
    policy = make_policy()
    ml = policy.budgets[0]
    spec = ml.block[0].model_copy(update={"provider": "nosuchcloud"})
    policy = policy.model_copy(
        update={"budgets": [ml.model_copy(update={"block": [spec]}), *policy.budgets[1:]]}
    )
    result = scan(policy, enforcers=None)
    assert result.plan is None
    [pending] = result.pending
    assert (pending.budget, pending.decision, pending.action) == ("ml", "block", "stop")
    assert pending.install == "cloudcircuit-nosuchcloud"
    assert "not installed" in pending.reason


# -- breaker, failures and the half-written rule ------------------------------------------


def test_breaker_persists_across_scans_and_fail_closed_budgets_block(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    failing = {"fake": demo_source(fail={i: SourceError("billing API down") for i in range(1, 99)})}
    actions: list[tuple[str, str, bool]] = []
    for expected_failures in (1, 2, 3):
        store = SQLiteStore(str(db))  # a fresh connection every scan: state lives in the file
        try:
            result = scan(store=store, sources=failing)
        finally:
            store.close()
        d = by_budget(result)
        actions.append((d["ml"].action, d["platform"].action, result.breaker_open))
        assert result.breaker.consecutive_failures == expected_failures
        assert {e.kind for e in result.errors} == {"source"}
    assert actions == [
        ("allow", "allow", False),
        ("allow", "allow", False),
        ("block", "allow", True),  # fail_closed blocks once it opens; the others fail open
    ]
    breaker = next(e for e in d["ml"].evidence if e.rule == "breaker")
    assert breaker.fired and breaker.data["is_open"]
    assert "fail-open" in d["platform"].reason
    # recovery: healthy scans reset the count; the cooldown keeps it open for 2 more scans
    healthy = {"fake": demo_source()}
    opened = []
    for _ in range(3):
        store = SQLiteStore(str(db))
        try:
            result = scan(store=store, sources=healthy)
        finally:
            store.close()
        opened.append((result.breaker_open, result.breaker.consecutive_failures))
    assert opened == [(True, 0), (False, 0), (False, 0)]


def test_incomplete_data_beyond_tolerance_counts_as_a_failed_scan() -> None:
    store = MemoryStore()
    stale = demo_source(stale_after=NOW - timedelta(days=5))
    result = scan(store=store, sources={"fake": stale})
    assert {e.kind for e in result.errors} == {"incomplete"}
    assert load_breaker(store, BREAKER_NAME).consecutive_failures == 1
    # data as late as the settle window explains is fine
    result = scan(store=store, sources={"fake": demo_source(stale_after=NOW)})
    assert result.errors == []
    assert load_breaker(store, BREAKER_NAME).consecutive_failures == 0


def test_a_crash_mid_scan_counts_a_failure_and_leaves_the_journal_empty(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.db"))
    enforcer = FakeEnforcer(FLEET)
    # the first budget reads fine (and would block); the second read dies
    source = demo_source(fail={2: RuntimeError("connection reset mid-read")})
    with pytest.raises(RuntimeError, match="connection reset"):
        scan(store=store, sources={"fake": source}, enforcers={"fake": enforcer}, enforce=True)
    assert enforcer.applied == []
    assert store.runs() == []
    state = load_breaker(store, BREAKER_NAME)
    assert state.consecutive_failures == 1
    assert "connection reset" in (state.last_failure or "")
    store.close()


def test_a_failed_source_for_one_budget_keeps_the_journal_consistent() -> None:
    store = MemoryStore()
    enforcer = FakeEnforcer(FLEET)
    source = demo_source(fail={2: SourceError("throttled")})  # platform's read fails
    result = scan(store=store, sources={"fake": source}, enforcers={"fake": enforcer}, enforce=True)
    assert by_budget(result)["ml"].action == "block"
    assert by_budget(result)["platform"].action == "allow"
    assert [e.budget for e in result.errors] == ["platform"]
    entries = store.journal(result.run_id)
    befores = {e.seq for e in entries if e.phase == "before"}
    afters = {e.seq for e in entries if e.phase == "after"}
    assert befores == afters and len(befores) == 2


def test_to_dict_is_json_and_carries_decisions_with_evidence() -> None:
    result = scan()
    data = json.loads(json.dumps(result.to_dict()))
    assert data["dry_run"] is True
    assert data["action"] == "block"
    ml = next(d for d in data["decisions"] if d["budget"] == "ml")
    assert ml["action"] == "block"
    assert {e["rule"] for e in ml["evidence"]} >= {"budget", "spike", "forecast", "breaker"}
    assert data["plan"]["actions"][0]["action"] == "stop"
    assert data["breaker"]["open"] is False
    assert data["sources"][0]["requests"] == 3
    scope = next(s for s in data["scopes"] if s["budget"] == "ml")
    assert scope["anomalies"][-1].startswith("2026-11-21")


def test_fake_source_satisfies_the_protocol() -> None:
    assert isinstance(demo_source(), SpendSource)


def test_alerts_go_to_a_real_webhook_and_are_deduplicated() -> None:
    from cloudcircuit.cli.demo import WebhookReceiver

    store = MemoryStore()
    with WebhookReceiver() as hook:
        policy = make_policy(
            alerts=[{"name": "hook", "type": "webhook", "url": hook.url, "retries": 0}]
        )
        first = scan(policy, store=store)
        second = scan(policy, store=store)
        bodies = [json.loads(body) for _, body in hook.received]
    assert sorted((s, a.budget) for s, a in first.alerts.sent) == [
        ("hook", "ml"),
        ("hook", "platform"),
    ]
    assert len(second.alerts.sent) == 0 and len(second.alerts.suppressed) == 2
    assert sorted(b["action"] for b in bodies) == ["block", "throttle"]
    ml = next(b for b in bodies if b["action"] == "block")
    assert ml["budget"]["budget_limit"] == 12000
    assert ml["anomaly"]["is_spike"] is True


def test_a_failing_sink_is_reported_not_swallowed() -> None:
    from cloudcircuit.cli.demo import WebhookReceiver

    with WebhookReceiver() as hook:
        dead = hook.url  # the server stops when the block ends: nothing listens afterwards
    policy = make_policy(alerts=[{"name": "dead", "type": "webhook", "url": dead, "retries": 0}])
    result = scan(policy)
    assert len(result.alerts.failed) == 2
    assert {e.kind for e in result.errors} == {"alerts"}


def test_a_source_that_cannot_be_opened_fails_open_and_counts_a_failure() -> None:
    store = MemoryStore()
    policy = make_policy(sources=[{"name": "cloud", "type": "nosuchcloud"}])
    result = scan(policy, sources=None, store=store)
    assert [e.kind for e in result.errors] == ["source"]
    assert "pip install cloudcircuit-nosuchcloud" in result.errors[0].message
    assert all(d.action == "allow" for d in result.decisions)
    assert all("could not be read" in d.reason for d in result.decisions)
    assert load_breaker(store, BREAKER_NAME).consecutive_failures == 1


def test_hourly_granularity_judges_the_latest_settled_hour() -> None:
    def hourly(start: datetime) -> float:
        return 50.0 if start >= datetime(2026, 11, 23, 9, tzinfo=UTC) else 5.0

    policy = make_policy(
        defaults={"granularity": "hour", "lookback_days": 3, "settle_hours": 2},
        budgets=[{"name": "ml", "scope": {"account": ["222"]}, "period": "day", "amount": 5000}],
    )
    result = scan(policy, sources={"fake": FakeSource({_key(RUNAWAY): hourly})})
    spike = next(e for e in result.decisions[0].evidence if e.rule == "spike")
    assert spike.fired and spike.observed == 50.0
    series = result.scopes[0].series
    assert series.starts[-1] == datetime(2026, 11, 23, 13, tzinfo=UTC)
    assert int(series.complete.sum()) == len(series) - 2  # 12:00 and 13:00 end after 12:00
    forecast = next(e for e in result.decisions[0].evidence if e.rule == "forecast")
    assert forecast.data["elapsed"] == 12 and forecast.data["total"] == 24


def test_a_day_budget_on_monthly_buckets_is_a_config_error() -> None:
    from cloudcircuit.errors import ConfigError

    policy = make_policy(
        defaults={"granularity": "month"},
        budgets=[{"name": "d", "period": "day", "amount": 5}],
    )
    with pytest.raises(ConfigError, match=r"budgets\[0\].period"):
        scan(policy)


def test_burn_windows_and_named_detectors_add_evidence_with_their_actions() -> None:
    """When the policy enables them (DETECT's settings models), their evidence joins the rest."""
    from types import SimpleNamespace

    from cloudcircuit.burn import BurnWindowSpec, BurnWindowsSettings
    from cloudcircuit.detectors import SeasonalSettings
    from cloudcircuit.scan._judge import _detector_evidence

    result = scan()
    series = next(s for s in result.scopes if s.budget == "ml").series
    budget = make_policy().budgets[0]
    settings = SimpleNamespace(
        burn_windows=BurnWindowsSettings(
            windows=[BurnWindowSpec(long="2d", short="1d", factor=1.5, action="block")]
        ),
        seasonal=SeasonalSettings(action="block"),
        streaming=None,
    )
    evidence = _detector_evidence(series, budget, settings)
    rules = {e.rule: e for e in evidence}
    assert set(rules) == {"burn_windows", "seasonal"}
    # the runaway (6x since Nov 21) burns 12,000/month far faster than 1.5x pace over 2 days
    assert rules["burn_windows"].fired and rules["burn_windows"].action == "block"
    assert rules["seasonal"].action == "block"
    off = SimpleNamespace(burn_windows=BurnWindowsSettings(enabled=False), seasonal=None)
    assert _detector_evidence(series, budget, off) == []
