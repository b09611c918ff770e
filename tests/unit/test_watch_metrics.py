"""ScanMetrics from a constructed ScanResult: actions, errors, freshness, burn pairs, breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from cloudcircuit.decision import Evidence, combine
from cloudcircuit.metrics import ScanMetrics, scan_succeeded
from cloudcircuit.providers import ActionOutcome, Resource, SourceStats
from cloudcircuit.scan import ScanError, ScanResult, ScopeResult
from cloudcircuit.spend import Granularity, SpendSeries

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _result(errors: list[ScanError]) -> ScanResult:
    scope = {"sub_account": "222"}
    burn = Evidence(
        rule="burn_windows",
        fired=True,
        observed=6.5,
        threshold=6.0,
        action="block",
        data={"pair": "2d/1d", "burn_long": 6.5, "burn_short": 7.0},
    )
    decision = combine("ml", scope, [burn])
    series = SpendSeries(
        scope=scope,
        granularity=Granularity.DAY,
        starts=(NOW - timedelta(days=1),),
        amounts=np.array([1080.0]),
        complete=np.array([True]),
        currency="USD",
    )
    vm = Resource(provider="aws", type="ec2:instance", id="i-1")
    return ScanResult(
        run_id="r1",
        started_at=NOW - timedelta(seconds=3),
        finished_at=NOW,
        now=NOW,
        dry_run=False,
        decisions=[decision],
        scopes=[
            ScopeResult(
                budget="ml",
                scope=scope,
                series=series,
                decision=decision,
                period="month",
                period_start=NOW.replace(day=1),
                period_end=NOW.replace(month=12, day=1),
                amount=6000.0,
                period_spend=4500.0,
                forecast=None,
            )
        ],
        outcomes=[
            ActionOutcome(resource=vm, action="stop", status="done"),
            ActionOutcome(resource=vm, action="tag", status="failed", error="denied"),
        ],
        source_stats=[
            SourceStats(source="demo", requests=4, rows_read=99, freshness=NOW - timedelta(hours=5))
        ],
        breaker_open=True,
        errors=errors,
    )


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }


def test_scan_metrics_from_a_result() -> None:
    metrics = ScanMetrics(clock=lambda: NOW.timestamp())
    late = ScanError("incomplete", "last day still settling", budget="ml")
    assert metrics.observe(_result([late]))  # late data is not a scanner failure
    assert not metrics.observe(_result([ScanError("source", "boom", source="demo")]))
    metrics.observe_failure(RuntimeError("crash"), duration=0.5)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    s = _samples(body)

    def at(name: str, **labels: str) -> float:
        return s[(name, tuple(sorted(labels.items())))]

    ml = {"budget": "ml", "scope": "sub_account=222"}
    assert at("cloudcircuit_budget_usage_ratio", **ml) == 0.75
    assert at("cloudcircuit_budget_spend", **ml, currency="USD") == 4500
    assert at("cloudcircuit_decision", **ml) == 2
    assert at("cloudcircuit_rule_fired", **ml, rule="burn_windows") == 1
    assert at("cloudcircuit_burn_rate", **ml, pair="2d/1d", window="long") == 6.5
    assert at("cloudcircuit_burn_rate", **ml, pair="2d/1d", window="short") == 7
    assert at("cloudcircuit_burn_alert_firing", **ml, pair="2d/1d") == 1
    assert at("cloudcircuit_decisions_total", action="block") == 2
    assert at("cloudcircuit_actions_total", action="stop", status="done") == 2
    assert at("cloudcircuit_actions_total", action="tag", status="failed") == 2
    assert at("cloudcircuit_source_freshness_seconds", source="demo") == 5 * 3600
    assert at("cloudcircuit_source_requests_total", source="demo") == 8
    assert at("cloudcircuit_scans_total", outcome="success") == 1
    assert at("cloudcircuit_scans_total", outcome="failure") == 2
    assert at("cloudcircuit_scan_errors_total", kind="RuntimeError") == 1
    assert at("cloudcircuit_scan_errors_total", kind="incomplete") == 1
    assert at("cloudcircuit_scan_duration_seconds") == 0.5
    assert at("cloudcircuit_breaker_open") == 1
    assert at("slo_total", slo="scan_success") == 3
    assert at("slo_failures_total", slo="scan_success") == 2
    assert metrics.snapshot()["scans"] == 3
    assert scan_succeeded(_result([])) and not scan_succeeded(_result([ScanError("alerts", "x")]))
