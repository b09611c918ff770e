"""Decisions combine evidence: the strongest fired rule wins and the reason explains it."""

from __future__ import annotations

from cloudcircuit.decision import Evidence, combine, worst_action


def test_no_evidence_fired_allows() -> None:
    d = combine("b", {"service": "s"}, [Evidence("budget", False, 10.0, 100.0)])
    assert (d.action, d.severity, d.reason) == ("allow", "info", "all guardrails healthy")
    assert d.fired == ()


def test_strongest_action_wins_and_reason_lists_fired_rules() -> None:
    ev = [
        Evidence("forecast", True, 130.0, 100.0, action="throttle", detail="projected 130"),
        Evidence("spike", True, 600.0, 270.0, action="block"),
        Evidence("budget", False, 50.0, 100.0, action="block"),
    ]
    d = combine("ml", {"account": "222"}, ev)
    assert d.action == "block"
    assert d.severity == "critical"
    assert d.reason == "spike: 600 vs 270; forecast: projected 130"
    assert [e.rule for e in d.fired] == ["forecast", "spike"]
    out = d.to_dict()
    assert out["scope"] == {"account": "222"}
    assert out["evidence"][1]["threshold"] == 270.0


def test_worst_action() -> None:
    assert worst_action([]) == "allow"
    assert worst_action(["throttle", "allow"]) == "throttle"
    assert worst_action(["throttle", "block", "allow"]) == "block"
