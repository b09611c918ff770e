"""PrometheusExporter: an SLORegistry as Prometheus gauges (slo-budget-tracker 0.1 names).

Gauges, all labelled ``slo``: slo_target, slo_window_seconds, slo_success_ratio,
slo_failures_total, slo_total, slo_error_budget_remaining, slo_breached, and slo_burn_rate
(labels ``slo``, ``window_seconds``). Each exporter owns its CollectorRegistry, so several can
live in one process. Needs prometheus-client (``pip install 'cloudcircuit[metrics]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudcircuit.slo.tracker import SLORegistry

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["PrometheusExporter", "require_prometheus"]


def require_prometheus() -> None:
    """Raise an ImportError naming the extra when prometheus-client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the metrics extra installs it
        raise ImportError(
            "Prometheus export needs prometheus-client: pip install 'cloudcircuit[metrics]'"
        ) from exc


class PrometheusExporter:
    """Render the current state of an SLORegistry in the Prometheus text format."""

    def __init__(self, registry: SLORegistry) -> None:
        require_prometheus()
        from prometheus_client import CollectorRegistry, Gauge

        self._slos = registry
        self._registry = CollectorRegistry(auto_describe=True)
        reg = self._registry
        self._target = Gauge("slo_target", "SLO target success ratio.", ["slo"], registry=reg)
        self._window = Gauge(
            "slo_window_seconds", "SLO rolling window in seconds.", ["slo"], registry=reg
        )
        self._ratio = Gauge(
            "slo_success_ratio", "Success ratio over the SLO window.", ["slo"], registry=reg
        )
        self._failures = Gauge(
            "slo_failures_total", "Failures in the SLO window.", ["slo"], registry=reg
        )
        self._total = Gauge("slo_total", "Events in the SLO window.", ["slo"], registry=reg)
        self._remaining = Gauge(
            "slo_error_budget_remaining",
            "Fraction of the error budget left (1 untouched, <= 0 spent).",
            ["slo"],
            registry=reg,
        )
        self._burn = Gauge(
            "slo_burn_rate",
            "Burn rate over a short window (1 = spending the budget exactly over the window).",
            ["slo", "window_seconds"],
            registry=reg,
        )
        self._breached = Gauge(
            "slo_breached", "1 when the success ratio is below target.", ["slo"], registry=reg
        )

    @property
    def collector_registry(self) -> CollectorRegistry:
        return self._registry

    def refresh(self, *, at: float | None = None) -> None:
        """Set every gauge from a fresh snapshot of every SLO."""
        for snap in self._slos.snapshot_all(at=at):
            name = snap.name
            self._target.labels(name).set(snap.target)
            self._window.labels(name).set(snap.window_seconds)
            self._ratio.labels(name).set(snap.success_ratio)
            self._failures.labels(name).set(snap.failures)
            self._total.labels(name).set(snap.total)
            self._remaining.labels(name).set(snap.error_budget_remaining)
            self._breached.labels(name).set(1.0 if snap.is_breached else 0.0)
            for sample in snap.burn_rate_samples:
                self._burn.labels(name, str(sample.window_seconds)).set(sample.burn_rate)

    def render(self) -> tuple[bytes, str]:
        """``(body, content_type)`` for a /metrics response."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.refresh()
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
