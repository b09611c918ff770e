"""cloudcircuit: stop runaway cloud bills.

The cloudcircuit 0.3 API (scalar guardrails) is importable from here unchanged; the rest of the
public surface lives in its modules (``cloudcircuit.spend``, ``cloudcircuit.batch``,
``cloudcircuit.policy``, ``cloudcircuit.scan``, ``cloudcircuit.quota``, ``cloudcircuit.slo``).
"""

from cloudcircuit.errors import CloudCircuitError
from cloudcircuit.guardrails import (
    AnomalyCheckResult,
    BudgetCheckResult,
    BurnRateResult,
    CircuitBreakerDecision,
    ForecastResult,
    PolicyDecision,
    check_anomaly_robust,
    check_anomaly_spike,
    check_budget,
    check_burn_rate,
    evaluate_circuit_breaker,
    evaluate_spend_policy,
    forecast_budget_breach,
    make_alert_payload,
)
from cloudcircuit.spend import CostBasis, Granularity, SpendRecord, SpendSeries

__version__ = "1.0.0.dev0"

__all__ = [
    "AnomalyCheckResult",
    "BudgetCheckResult",
    "BurnRateResult",
    "CircuitBreakerDecision",
    "CloudCircuitError",
    "CostBasis",
    "ForecastResult",
    "Granularity",
    "PolicyDecision",
    "SpendRecord",
    "SpendSeries",
    "__version__",
    "check_anomaly_robust",
    "check_anomaly_spike",
    "check_budget",
    "check_burn_rate",
    "evaluate_circuit_breaker",
    "evaluate_spend_policy",
    "forecast_budget_breach",
    "make_alert_payload",
]
