"""The 0.3 guardrails over N series x T points at once (numpy), bit-for-bit with the scalar ones.

A scan judges thousands of scopes; looping :mod:`cloudcircuit.guardrails` over them costs about
100 µs per series in Python. Here every rule runs over a matrix ``values`` of shape ``(N, T)``
with optional ``lengths`` (row ``i`` is its first ``lengths[i]`` points, left-aligned; the rest
of the row is ignored, whatever it holds). Rows are processed in chunks so that a million
series fit in a few hundred megabytes besides the input itself, and float32 input is widened
chunk by chunk, never as a whole.

Agreement with the scalar functions is exact, not approximate, because a boundary verdict
(``latest > threshold``) can hinge on the last bit of a mean:

* means are summed in the order Python's ``sum()`` adds them: left to right, and with the
  Neumaier compensation that CPython 3.12+ applies to floats (detected at import);
* medians and quantiles read the same order statistics and combine them with the same
  operations (``(a + b) / 2.0``, ``lo + (rank - lo) * (hi - lo)``);
* the median absolute deviation is selected from the sorted history without a second sort:
  the deviations left and right of the median are two sorted runs, and the k-th smallest of
  two sorted runs is found by a vectorized binary search.

Validation follows the scalar rules and names the row: ``values[17, 3] = -1.0: spend must be
>= 0``. Every error is an :class:`~cloudcircuit.errors.InputError` (a ``ValueError``).
"""

from __future__ import annotations

from cloudcircuit.batch.engine import BatchResult, evaluate, stack_rows
from cloudcircuit.batch.results import (
    ACTIONS,
    REASONS,
    SEVERITIES,
    AnomalyArrays,
    BatchDetector,
    BreakerArrays,
    BudgetArrays,
    BurnRateArrays,
    DetectorArrays,
    ForecastArrays,
    GuardrailParams,
    PolicyArrays,
)
from cloudcircuit.batch.rules import (
    check_anomaly_robust,
    check_anomaly_spike,
    check_budget,
    check_burn_rate,
    evaluate_circuit_breaker,
    evaluate_spend_policy,
    forecast_budget_breach,
)

__all__ = [
    "ACTIONS",
    "REASONS",
    "SEVERITIES",
    "AnomalyArrays",
    "BatchDetector",
    "BatchResult",
    "BreakerArrays",
    "BudgetArrays",
    "BurnRateArrays",
    "DetectorArrays",
    "ForecastArrays",
    "GuardrailParams",
    "PolicyArrays",
    "check_anomaly_robust",
    "check_anomaly_spike",
    "check_budget",
    "check_burn_rate",
    "evaluate",
    "evaluate_circuit_breaker",
    "evaluate_spend_policy",
    "forecast_budget_breach",
    "stack_rows",
]
