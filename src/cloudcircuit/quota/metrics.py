"""Prometheus metrics of the quota ledger, with bounded label sets.

Labels are the operation, its outcome, the denial reason and the hierarchy *level* (``global``,
``project``, ``user``): never an entity, so a million users make no more series than one.
prometheus-client is the ``metrics`` extra, imported when a QuotaMetrics is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATENCY_BUCKETS", "QuotaMetrics"]

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
_DENIED = {"denied": "limit", "unavailable": "ledger_unavailable"}


class QuotaMetrics:
    """Counters and a latency histogram in their own CollectorRegistry (or the one given)."""

    def __init__(self, registry: Any = None) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError as exc:  # pragma: no cover - the metrics extra is part of dev
            raise ImportError(
                "quota metrics need prometheus-client: pip install 'cloudcircuit[metrics]'"
            ) from exc
        self.registry = registry if registry is not None else CollectorRegistry()
        self.latency = Histogram(
            "cloudcircuit_quota_ledger_seconds",
            "Ledger round-trip time per operation.",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.operations = Counter(
            "cloudcircuit_quota_operations",
            "Ledger operations by outcome.",
            ["op", "outcome"],
            registry=self.registry,
        )
        self.reservations = Counter(
            "cloudcircuit_quota_reservations",
            "Reservation attempts by outcome (reserved, denied).",
            ["outcome"],
            registry=self.registry,
        )
        self.denials = Counter(
            "cloudcircuit_quota_denials",
            "Denied requests by reason (limit, ledger_unavailable, unpriced).",
            ["reason"],
            registry=self.registry,
        )
        self.spend = Counter(
            "cloudcircuit_quota_committed_spend",
            "Spend committed or charged, in currency units, per hierarchy level.",
            ["level"],
            registry=self.registry,
        )

    def observe(self, kind: str, seconds: float, outcome: str) -> None:
        """One ledger call (LedgerObserver protocol)."""
        self.latency.labels(kind).observe(seconds)
        self.operations.labels(kind, outcome).inc()
        if kind == "reserve":
            self.reservations.labels("reserved" if outcome == "reserved" else "denied").inc()
            if outcome in _DENIED:
                self.denials.labels(_DENIED[outcome]).inc()

    def committed(self, levels: tuple[str, ...], amount: float) -> None:
        """Spend committed on every level of a chain (LedgerObserver protocol)."""
        for level in levels:
            self.spend.labels(level).inc(amount)

    def denied(self, reason: str) -> None:
        """A denial decided outside the ledger (an unpriced cost)."""
        self.denials.labels(reason).inc()
        self.reservations.labels("denied").inc()

    def render(self) -> tuple[bytes, str]:
        """(exposition text, content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
