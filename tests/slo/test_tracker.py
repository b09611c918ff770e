"""slo-budget-tracker 0.1 behaviours (reference/API.md section 2) on every store."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from cloudcircuit.slo import (
    BucketedStore,
    BurnRateSample,
    InMemoryStore,
    Observation,
    ObservationStore,
    SLODefinition,
    SLORegistry,
    SLOSnapshot,
    SLOTracker,
)

HOUR = 3600
DAY = 86400
T0 = 1_700_000_400.0  # a multiple of 60 and of 3600


def test_definition_defaults_and_budget_ratio() -> None:
    d = SLODefinition(name="availability", target=0.999)
    assert d.window_seconds == 2_592_000
    assert d.burn_rate_windows == (3600, 21600)
    assert d.burn_rate_threshold == 14.4
    assert d.description == ""
    assert d.error_budget_ratio == pytest.approx(0.001)
    with pytest.raises(AttributeError):
        d.target = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "target": 0.9}, "name"),
        ({"name": "a", "target": 0.0}, "target"),
        ({"name": "a", "target": 1.0}, "target"),
        ({"name": "a", "target": 0.9, "window_seconds": 0}, "window_seconds"),
        ({"name": "a", "target": 0.9, "burn_rate_windows": (0,)}, "burn_rate_windows"),
        (
            {"name": "a", "target": 0.9, "window_seconds": 100, "burn_rate_windows": (200,)},
            "burn_rate_windows",
        ),
        ({"name": "a", "target": 0.9, "burn_rate_threshold": 1.0}, "burn_rate_threshold"),
    ],
)
def test_definition_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SLODefinition(**kwargs)  # type: ignore[arg-type]


StoreFactory = Callable[[SLODefinition], ObservationStore | None]

STORES: dict[str, StoreFactory] = {
    "default": lambda d: None,
    "bucketed": lambda d: BucketedStore(d.window_seconds, resolution_seconds=60),
}


@pytest.fixture(params=sorted(STORES))
def make(request: pytest.FixtureRequest) -> Iterator[Callable[..., SLOTracker]]:
    factory = STORES[request.param]

    def build(**kwargs: object) -> SLOTracker:
        d = SLODefinition(**kwargs)  # type: ignore[arg-type]
        return SLOTracker(d, store=factory(d), clock=lambda: T0)

    yield build


def test_empty_tracker_is_healthy(make: Callable[..., SLOTracker]) -> None:
    snap = make(name="a", target=0.99).snapshot()
    assert (snap.total, snap.failures, snap.success_ratio) == (0, 0, 1.0)
    assert snap.error_budget_remaining == 1.0
    assert snap.burn_rate == 0.0
    assert not snap.is_breached and not snap.is_budget_exhausted
    assert snap.burn_rate_samples == (
        BurnRateSample(3600, 0.0, 1.0, 0),
        BurnRateSample(21600, 0.0, 1.0, 0),
    )


def test_snapshot_math(make: Callable[..., SLOTracker]) -> None:
    t = make(name="a", target=0.99)
    for i in range(990):
        t.record_success(at=T0 - 600 - i)
    for i in range(10):
        t.record_failure(at=T0 - 600 - i)
    snap = t.snapshot()
    assert (snap.total, snap.failures) == (1000, 10)
    assert snap.success_ratio == pytest.approx(0.99)
    assert snap.error_budget_remaining == pytest.approx(0.0, abs=1e-9)
    assert snap.is_budget_exhausted  # float dust counts as spent
    assert not snap.is_breached  # 0.99 is not below 0.99
    assert snap.burn_rate == pytest.approx(1.0)
    t.record(False, at=T0 - 1)
    snap = t.snapshot()
    assert snap.is_breached
    assert snap.error_budget_remaining < 0


def test_old_events_leave_the_window(make: Callable[..., SLOTracker]) -> None:
    t = make(name="a", target=0.9, window_seconds=DAY)
    t.record_failure(at=T0 - 2 * DAY)
    t.record_success(at=T0 - HOUR)
    snap = t.snapshot()
    assert (snap.total, snap.failures) == (1, 0)


def test_window_includes_its_start(make: Callable[..., SLOTracker]) -> None:
    t = make(name="a", target=0.9, window_seconds=DAY, burn_rate_windows=(HOUR,))
    t.record_failure(at=T0 - HOUR)  # exactly on the 1 h boundary: included
    t.record_success(at=T0 - HOUR - 60)  # before it: only in the day window
    s = t.snapshot()
    assert s.total == 2
    assert s.burn_rate_samples[0].sample_count == 1
    assert s.burn_rate_samples[0].burn_rate == pytest.approx(10.0)


def test_check_burn_rate_alerts_only_hot_windows(make: Callable[..., SLOTracker]) -> None:
    t = make(name="a", target=0.99)
    # last hour: 20 % failures (burn 20); the 6 h window is diluted by older successes
    for i in range(80):
        t.record_success(at=T0 - 60 - i)
    for i in range(20):
        t.record_failure(at=T0 - 60 - i)
    for i in range(5000):
        t.record_success(at=T0 - 2 * HOUR - i)
    alerts = t.check_burn_rate()
    assert [a.window_seconds for a in alerts] == [3600]
    a = alerts[0]
    assert a.slo_name == "a"
    assert a.burn_rate == pytest.approx(20.0)
    assert a.threshold == 14.4
    assert a.success_ratio == pytest.approx(0.8)
    assert a.sample_count == 100


def test_alert_at_exact_threshold_and_empty_windows_skip(
    make: Callable[..., SLOTracker],
) -> None:
    t = make(name="a", target=0.9, burn_rate_windows=(3600,), burn_rate_threshold=2.0)
    assert t.check_burn_rate() == []  # no samples: skipped, not an alert
    for i in range(4):
        t.record_success(at=T0 - 10 - i)
    t.record_failure(at=T0 - 20)
    # failure ratio 0.2 / budget 0.1 = burn exactly 2.0: >= threshold alerts
    assert len(t.check_burn_rate()) == 1


def test_clock_is_used_when_at_is_omitted() -> None:
    now = [T0]
    d = SLODefinition(name="a", target=0.9, window_seconds=60, burn_rate_windows=(60,))
    t = SLOTracker(d, clock=lambda: now[0])
    t.record_failure()
    assert t.snapshot().failures == 1
    now[0] += 120
    assert t.snapshot().total == 0


def test_in_memory_store_protocol() -> None:
    s = InMemoryStore(max_age_seconds=100)
    with pytest.raises(ValueError):
        InMemoryStore(0)
    s.record(Observation(10.0, True))
    s.record(Observation(50.0, False))
    assert len(s) == 2
    assert s.window(60.0, 20) == [Observation(50.0, False)]
    s.record(Observation(160.0, True))  # trims what is older than 160 - 100
    assert [o.timestamp for o in s.window(1e9, 10**10)] == [160.0]
    s.trim(200.0)
    assert len(s) == 0


def test_registry() -> None:
    reg = SLORegistry()
    a = reg.define(SLODefinition(name="availability", target=0.999))
    with pytest.raises(ValueError, match="already registered"):
        reg.define(SLODefinition(name="availability", target=0.99))
    b = SLOTracker(SLODefinition(name="freshness", target=0.99))
    reg.add(b)
    with pytest.raises(ValueError):
        reg.add(b)
    assert reg.get("availability") is a
    with pytest.raises(KeyError, match="nope"):
        reg.get("nope")
    assert reg.names() == ["availability", "freshness"]
    assert "freshness" in reg and "x" not in reg
    assert len(reg) == 2
    assert [t.name for t in reg] == ["availability", "freshness"]
    for _ in range(10):
        a.record_failure(at=T0)
    snaps = reg.snapshot_all(at=T0)
    assert all(isinstance(s, SLOSnapshot) for s in snaps)
    assert [s.failures for s in snaps] == [10, 0]
    alerts = reg.check_burn_rates(at=T0)
    assert {al.slo_name for al in alerts} == {"availability"}
    assert all(math.isclose(al.burn_rate, 1000.0) for al in alerts)
