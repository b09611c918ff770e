"""Alert payloads: the 0.3 keys filled from evidence, nulls where a rule did not run."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloudcircuit.alerts import Alert, jsonable, scope_fingerprint
from cloudcircuit.decision import Decision, Evidence, combine
from cloudcircuit.errors import InputError
from cloudcircuit.guardrails import (
    check_anomaly_spike,
    check_budget,
    evaluate_circuit_breaker,
    evaluate_spend_policy,
    make_alert_payload,
)
from cloudcircuit.state import BreakerState, breaker_evidence

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
SCOPE = {"provider": "AWS", "sub_account": "222222222222", "service": "EC2"}


def _evidence_03(spend: float, limit: float, series: list[float]) -> list[Evidence]:
    """Evidence shaped as the batch engine reports it, from the 0.3 scalar results."""
    b = check_budget(spend, limit, 0.9)
    a = check_anomaly_spike(series, spike_multiplier=1.5)
    return [
        Evidence(
            rule="budget",
            fired=b.is_warning or b.is_breached,
            observed=b.current_spend,
            threshold=limit if b.is_breached else limit * 0.9,
            action="block" if b.is_breached else "throttle",
            score=b.usage_ratio,
            data={
                "budget_limit": b.budget_limit,
                "usage_ratio": b.usage_ratio,
                "remaining_budget": b.remaining_budget,
            },
        ),
        Evidence(
            rule="spike",
            fired=a.is_spike,
            observed=a.latest_spend,
            threshold=a.threshold,
            expected=a.baseline_mean,
            data={"baseline": a.baseline_mean},
        ),
    ]


@pytest.mark.parametrize(
    ("spend", "limit", "series", "failures"),
    [
        (920.0, 1000.0, [120.0, 118.0, 121.0, 250.0], 0),
        (1200.0, 1000.0, [10.0, 10.0, 11.0], 0),
        (100.0, 1000.0, [10.0, 10.0, 11.0], 0),
        (100.0, 1000.0, [10.0, 10.0, 11.0], 3),
    ],
)
def test_matches_03_make_alert_payload(
    spend: float, limit: float, series: list[float], failures: int
) -> None:
    evidence = _evidence_03(spend, limit, series)
    breaker_state = BreakerState(consecutive_failures=failures, cooldown_remaining=0)
    evidence.append(breaker_evidence(breaker_state, failure_threshold=3))
    decision = combine("ml", SCOPE, evidence)
    alert = Alert.from_decision(
        decision, service="billing-worker", environment="prod", run_id="r1", now=NOW
    )
    payload = alert.to_payload()
    policy = evaluate_spend_policy(
        check_budget(spend, limit, 0.9),
        check_anomaly_spike(series, spike_multiplier=1.5),
        evaluate_circuit_breaker(failures, 3, 0),
    )
    old = make_alert_payload(policy, "billing-worker", "prod")
    for section in ("budget", "anomaly", "breaker"):
        assert payload[section] == pytest.approx(old[section]), section
    assert payload["action"] == policy.action
    assert payload["severity"] == policy.severity
    assert set(old) <= set(payload)


def test_extra_keys_and_json() -> None:
    decision = combine("ml", SCOPE, _evidence_03(920.0, 1000.0, [1.0, 1.0, 5.0]))
    local = NOW.astimezone(timezone(timedelta(hours=1)))
    alert = Alert.from_decision(decision, service="s", environment="e", run_id="run-7", now=local)
    payload = alert.to_payload()
    assert payload["run_id"] == "run-7"
    assert payload["budget_name"] == "ml"
    assert payload["scope"] == SCOPE
    assert payload["timestamp"] == "2026-11-23T04:00:00+00:00"
    assert [e["rule"] for e in payload["evidence"]] == ["budget", "spike"]
    assert payload["evidence"][0]["data"]["budget_limit"] == 1000.0
    assert json.loads(alert.to_json()) == payload


def test_rules_that_did_not_run_are_null() -> None:
    forecast = Evidence(
        rule="forecast", fired=True, observed=23000.0, threshold=22000.0, action="throttle"
    )
    alert = Alert.from_decision(
        combine("platform", {"service": "ECS"}, [forecast]),
        service="s",
        environment="e",
        run_id="r",
        now=NOW,
    )
    payload = alert.to_payload()
    assert payload["budget"] == {
        "current_spend": None,
        "budget_limit": None,
        "usage_ratio": None,
        "remaining_budget": None,
    }
    assert payload["anomaly"] == {
        "latest_spend": None,
        "baseline_mean": None,
        "threshold": None,
        "is_spike": None,
    }
    assert payload["breaker"] == {
        "is_open": None,
        "allow_operation": None,
        "retry_after_steps": None,
    }
    assert payload["action"] == "throttle" and payload["severity"] == "warning"


def test_scan_style_budget_evidence_uses_remaining_not_threshold() -> None:
    """threshold is the warning level until breached: the limit must come from the data."""
    ev = Evidence(
        rule="budget",
        fired=True,
        observed=930.0,
        threshold=900.0,
        score=0.93,
        data={"usage_ratio": 0.93, "remaining": 70.0},
    )
    alert = Alert.from_decision(
        combine("b", {}, [ev]), service="s", environment="e", run_id="r", now=NOW
    )
    assert alert.to_payload()["budget"] == pytest.approx(
        {
            "current_spend": 930.0,
            "budget_limit": 1000.0,
            "usage_ratio": 0.93,
            "remaining_budget": 70.0,
        }
    )
    assert alert.scope_text == "all"


def test_non_finite_numbers_become_null_and_json_is_strict() -> None:
    burn = Evidence(
        rule="burn_rate",
        fired=True,
        observed=math.inf,
        threshold=1.4,
        score=math.inf,
        data={"latest_spend": 5.0, "average_spend": 0.0},
    )
    alert = Alert.from_decision(
        combine("b", {}, [burn]), service="s", environment="e", run_id="r", now=NOW
    )
    payload = alert.to_payload()
    assert payload["evidence"][0]["observed"] is None
    body = alert.to_json().decode()
    assert "Infinity" not in body and "NaN" not in body


def test_validation() -> None:
    d = Decision(budget="b", scope={}, action="allow", severity="info", reason="ok")
    with pytest.raises(InputError, match="service"):
        Alert.from_decision(d, service="", environment="e", run_id="r")
    with pytest.raises(InputError, match="environment"):
        Alert.from_decision(d, service="s", environment="", run_id="r")
    with pytest.raises(InputError, match="run_id"):
        Alert.from_decision(d, service="s", environment="e", run_id="")
    with pytest.raises(InputError, match="timezone"):
        Alert.from_decision(d, service="s", environment="e", run_id="r", now=datetime(2026, 1, 1))


def test_fingerprint_ignores_scope_order() -> None:
    a = scope_fingerprint("b", {"x": "1", "y": "2"})
    assert a == scope_fingerprint("b", {"y": "2", "x": "1"})
    assert a != scope_fingerprint("b", {"x": "1", "y": "3"})
    assert a != scope_fingerprint("c", {"x": "1", "y": "2"})


def test_jsonable() -> None:
    import numpy as np

    assert jsonable({"a": (1, np.float64(2.5), np.int64(3)), "b": float("nan")}) == {
        "a": [1, 2.5, 3],
        "b": None,
    }
    assert jsonable(NOW) == "2026-11-23T04:00:00+00:00"
    assert jsonable(object.__new__(type("Thing", (), {"__str__": lambda self: "thing"}))) == (
        "thing"
    )
