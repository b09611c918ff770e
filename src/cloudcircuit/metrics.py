"""Prometheus exposition for the scanner (``cloudcircuit watch`` serves it on /metrics).

From each :class:`~cloudcircuit.scan.ScanResult` it sets gauges for the *current* state
(budget usage ratio, multi-window burn rates per window pair, each scope's decision, source
freshness) and counts what happened over time (scans by outcome, decisions, actions taken).
The scanner's own reliability is an SLO: every scan is one event of the ``scan_success`` SLO
(:mod:`cloudcircuit.slo`), exported with the slo-budget-tracker gauge names.

A scan succeeds when it completes and reports no errors other than ``incomplete`` data (late
billing data is the provider's lateness, not the scanner failing). Needs prometheus-client
(``pip install 'cloudcircuit[metrics]'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudcircuit.decision import ACTION_RANK
from cloudcircuit.slo import PrometheusExporter, SLODefinition, SLORegistry, SLOTracker
from cloudcircuit.slo.exporter import require_prometheus
from cloudcircuit.spend import scope_key, to_utc

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from cloudcircuit.scan import ScanResult

__all__ = ["SCAN_SLO", "ScanMetrics", "scan_succeeded"]

#: name of the scanner's own SLO
SCAN_SLO = "scan_success"

#: scan error kinds that do not make a scan fail (data lateness is not a scanner fault)
_TOLERATED = frozenset({"incomplete"})


def scan_succeeded(result: ScanResult) -> bool:
    """True when the scan reported no errors other than incomplete (late) data."""
    return all(e.kind in _TOLERATED for e in result.errors)


class ScanMetrics:
    """The scanner's gauges and counters in one CollectorRegistry, plus the scan SLO."""

    def __init__(
        self,
        *,
        slo_target: float = 0.99,
        slo_window_seconds: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_prometheus()
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self._clock = clock
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        scope = ["budget", "scope"]
        self.usage = Gauge(
            "cloudcircuit_budget_usage_ratio",
            "Period-to-date spend / budget amount.",
            scope,
            registry=reg,
        )
        self.spend = Gauge(
            "cloudcircuit_budget_spend", "Period-to-date spend.", [*scope, "currency"], registry=reg
        )
        self.amount = Gauge(
            "cloudcircuit_budget_amount", "Budget amount per period.", scope, registry=reg
        )
        self.forecast = Gauge(
            "cloudcircuit_budget_forecast",
            "Projected spend at the end of the period.",
            scope,
            registry=reg,
        )
        self.burn = Gauge(
            "cloudcircuit_burn_rate",
            "Budget burn rate of each window of each multi-window alert pair (1 = on pace).",
            [*scope, "pair", "window"],
            registry=reg,
        )
        self.burn_firing = Gauge(
            "cloudcircuit_burn_alert_firing",
            "1 when both windows of the pair burn at or above its factor.",
            [*scope, "pair"],
            registry=reg,
        )
        self.decision = Gauge(
            "cloudcircuit_decision",
            "Latest decision per scope: 0 allow, 1 throttle, 2 block.",
            scope,
            registry=reg,
        )
        self.rule_fired = Gauge(
            "cloudcircuit_rule_fired",
            "1 for every rule that fired in the latest decision of a scope.",
            [*scope, "rule"],
            registry=reg,
        )
        self.decisions = Counter(
            "cloudcircuit_decisions",
            "Decisions made, by action.",
            ["action"],
            registry=reg,
        )
        self.actions = Counter(
            "cloudcircuit_actions",
            "Enforcement actions taken, by action and status (dry-run ones included).",
            ["action", "status"],
            registry=reg,
        )
        self.freshness = Gauge(
            "cloudcircuit_source_freshness_seconds",
            "Age of the newest charge a source returned, at the time of the scan.",
            ["source"],
            registry=reg,
        )
        self.source_rows = Gauge(
            "cloudcircuit_source_rows_read",
            "Rows read in the latest scan.",
            ["source"],
            registry=reg,
        )
        self.source_requests = Counter(
            "cloudcircuit_source_requests",
            "Provider API requests made.",
            ["source"],
            registry=reg,
        )
        self.scans = Counter(
            "cloudcircuit_scans", "Scans run, by outcome.", ["outcome"], registry=reg
        )
        self.scan_errors = Counter(
            "cloudcircuit_scan_errors", "Errors reported by scans, by kind.", ["kind"], registry=reg
        )
        self.duration = Gauge(
            "cloudcircuit_scan_duration_seconds", "Duration of the latest scan.", registry=reg
        )
        self.last_scan = Gauge(
            "cloudcircuit_last_scan_timestamp_seconds", "When the latest scan ended.", registry=reg
        )
        self.last_success = Gauge(
            "cloudcircuit_last_success_timestamp_seconds",
            "When the latest successful scan ended.",
            registry=reg,
        )
        self.breaker_open = Gauge(
            "cloudcircuit_breaker_open", "1 while the scan circuit breaker is open.", registry=reg
        )
        self.slos = SLORegistry()
        self.scan_slo: SLOTracker = self.slos.define(
            SLODefinition(
                name=SCAN_SLO,
                target=slo_target,
                window_seconds=slo_window_seconds,
                burn_rate_windows=tuple(w for w in (3600, 21600, 86400) if w <= slo_window_seconds),
                description="scans that complete without errors",
            ),
            clock=clock,
        )
        self._slo_exporter = PrometheusExporter(self.slos)

    # -- updates -------------------------------------------------------------------------

    def observe(self, result: ScanResult, *, duration: float | None = None) -> bool:
        """Update everything from one scan; returns whether it counted as a success."""
        ok = scan_succeeded(result)
        self._current_state(result)
        for d in result.decisions:
            self.decisions.labels(d.action).inc()
        for outcome in result.outcomes:
            self.actions.labels(outcome.action, str(outcome.status)).inc()
        now = to_utc(result.finished_at)
        for stats in result.source_stats:
            name = stats.source or "source"
            if stats.freshness is not None:
                age = (now - to_utc(stats.freshness)).total_seconds()
                self.freshness.labels(name).set(max(age, 0.0))
            self.source_rows.labels(name).set(stats.rows_read)
            if stats.requests:
                self.source_requests.labels(name).inc(stats.requests)
        for error in result.errors:
            self.scan_errors.labels(error.kind).inc()
        self.breaker_open.set(1.0 if result.breaker_open else 0.0)
        seconds = (
            duration
            if duration is not None
            else (to_utc(result.finished_at) - to_utc(result.started_at)).total_seconds()
        )
        self._finish(ok, seconds, now)
        return ok

    def observe_failure(self, error: BaseException, *, duration: float = 0.0) -> None:
        """A scan that raised: counts against the scan SLO, leaves the last state in place."""
        self.scan_errors.labels(type(error).__name__).inc()
        self._finish(False, duration, None)

    def _finish(self, ok: bool, duration: float, ended: datetime | None) -> None:
        now = self._clock() if ended is None else ended.timestamp()
        self.scans.labels("success" if ok else "failure").inc()
        self.duration.set(duration)
        self.last_scan.set(now)
        if ok:
            self.last_success.set(now)
        self.scan_slo.record(ok, at=now)

    def _current_state(self, result: ScanResult) -> None:
        for gauge in (
            self.usage,
            self.spend,
            self.amount,
            self.forecast,
            self.burn,
            self.burn_firing,
            self.decision,
            self.rule_fired,
        ):
            gauge.clear()
        for s in result.scopes:
            labels = (s.budget, scope_key(s.scope))
            self.amount.labels(*labels).set(s.amount)
            self.spend.labels(*labels, s.series.currency).set(s.period_spend)
            self.usage.labels(*labels).set(s.period_spend / s.amount if s.amount else 0.0)
            if s.forecast is not None:
                self.forecast.labels(*labels).set(s.forecast)
            self.decision.labels(*labels).set(ACTION_RANK[s.decision.action])
            for e in s.decision.evidence:
                if e.fired:
                    self.rule_fired.labels(*labels, e.rule).set(1.0)
                if e.rule == "burn_windows" and "burn_long" in e.data:
                    pair = str(e.data["pair"])
                    self.burn.labels(*labels, pair, "long").set(float(e.data["burn_long"]))
                    self.burn.labels(*labels, pair, "short").set(float(e.data["burn_short"]))
                    self.burn_firing.labels(*labels, pair).set(1.0 if e.fired else 0.0)

    # -- exposition ----------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """``(body, content_type)``: the scanner metrics followed by the scan SLO gauges."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        slo_body, _ = self._slo_exporter.render()
        return generate_latest(self.registry) + slo_body, CONTENT_TYPE_LATEST

    def snapshot(self) -> dict[str, Any]:
        """The scan SLO as a dict (for logs and the watch status line)."""
        snap = self.scan_slo.snapshot()
        return {
            "scans": snap.total,
            "failures": snap.failures,
            "success_ratio": snap.success_ratio,
            "error_budget_remaining": snap.error_budget_remaining,
        }
