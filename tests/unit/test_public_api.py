"""The public API is complete and sorted, and keeps every cloudcircuit 0.3 name."""

from __future__ import annotations

import importlib

import pytest

import cloudcircuit

V03_NAMES = {
    "__version__",
    "AnomalyCheckResult",
    "BudgetCheckResult",
    "BurnRateResult",
    "CircuitBreakerDecision",
    "ForecastResult",
    "PolicyDecision",
    "check_anomaly_robust",
    "check_anomaly_spike",
    "check_budget",
    "check_burn_rate",
    "evaluate_circuit_breaker",
    "evaluate_spend_policy",
    "forecast_budget_breach",
    "make_alert_payload",
}


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 (isort-style) order: CONSTANTS, Classes, then the rest."""
    if name.isupper():
        return (1, name)
    if name[0].isupper():
        return (2, name)
    return (3, name)


def test_all_keeps_every_03_name() -> None:
    assert set(cloudcircuit.__all__) >= V03_NAMES


@pytest.mark.parametrize(
    "module",
    [
        "cloudcircuit",
        "cloudcircuit.errors",
        "cloudcircuit.spend",
        "cloudcircuit.providers",
        "cloudcircuit.guardrails",
    ],
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert len(names) == len(set(names)), f"{module}.__all__ has duplicates"
    assert names == sorted(names, key=_isort_key), f"{module}.__all__ is not sorted"
    for name in names:
        assert hasattr(mod, name), f"{module}.__all__ names missing {name}"


def test_public_callables_are_exported() -> None:
    public = {
        name
        for name, value in vars(cloudcircuit).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", "").startswith("cloudcircuit")
    }
    assert public <= set(cloudcircuit.__all__)
