"""Deliver alerts to sinks once: de-duplication through the state store, failures reported.

For each (alert, sink): alerts below the sink's ``min_severity`` are skipped (``allow`` alerts
are ``info``, so only sinks set to ``info`` hear about healthy scopes); an alert claims the
key ``alert:<sink>:<budget+scope fingerprint>:<action>:<severity>`` with ``set_if_absent``
and a TTL, so the same alert is sent once per window by however many
scanners run. An escalation (throttle -> block) has another key and goes out at once. A
failed delivery deletes its key again, so the next scan retries instead of staying silent.
Sinks that resolve incidents (PagerDuty) remember what they triggered under
``alert-open:<sink>:<fingerprint>`` and get the ``allow`` alert of a recovered scope once.

One sink failing never stops the others, and :func:`dispatch` never raises for it: the
failure is a line of the :class:`DeliveryReport`. A sink that gave up after all its retries
(unreachable, 429, 5xx) is not tried again for the rest of the call: its remaining alerts are
reported failed at once (and stay un-deduplicated), so a dead receiver costs one retry cycle
per scan rather than one per alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudcircuit.alerts.payload import SEVERITY_RANK, Alert
from cloudcircuit.alerts.sinks import Sink
from cloudcircuit.alerts.transport import DeliveryGaveUpError
from cloudcircuit.decision import SEVERITY_FOR_ACTION
from cloudcircuit.errors import CloudCircuitError, InputError
from cloudcircuit.providers import StateStore

__all__ = ["DeliveryReport", "dedup_key", "dispatch", "open_key"]


def dedup_key(sink: str, alert: Alert) -> str:
    return f"alert:{sink}:{alert.fingerprint}:{alert.action}:{alert.severity}"


def open_key(sink: str, alert: Alert) -> str:
    return f"alert-open:{sink}:{alert.fingerprint}"


@dataclass(slots=True)
class DeliveryReport:
    """What happened to each (sink, alert) pair."""

    sent: list[tuple[str, Alert]] = field(default_factory=list)
    suppressed: list[tuple[str, Alert]] = field(default_factory=list)
    failed: list[tuple[str, Alert, str]] = field(default_factory=list)
    #: below the sink's min_severity, or a recovery nobody needs to hear about
    skipped: list[tuple[str, Alert]] = field(default_factory=list)
    #: state-store trouble that did not stop delivery (de-duplication was not possible)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        def pair(sink: str, alert: Alert) -> dict[str, Any]:
            return {
                "sink": sink,
                "budget": alert.budget,
                "scope": dict(alert.scope),
                "action": alert.action,
                "severity": alert.severity,
            }

        return {
            "sent": [pair(s, a) for s, a in self.sent],
            "suppressed": [pair(s, a) for s, a in self.suppressed],
            "failed": [{**pair(s, a), "reason": r} for s, a, r in self.failed],
            "skipped": [pair(s, a) for s, a in self.skipped],
            "notes": list(self.notes),
        }


class _Attempts:
    """Sends through sinks, remembering those that gave up during this dispatch."""

    def __init__(self) -> None:
        self.down: dict[str, str] = {}

    def send(self, sink: Sink, alert: Alert) -> str | None:
        """The failure reason, or None on success. Any exception counts as a failure."""
        if sink.name in self.down:
            return f"not attempted: sink gave up earlier in this dispatch ({self.down[sink.name]})"
        try:
            sink.send(alert)
        except DeliveryGaveUpError as exc:
            self.down[sink.name] = str(exc)
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


def _recover(
    sink: Sink, alert: Alert, store: StateStore, report: DeliveryReport, attempts: _Attempts
) -> None:
    key = open_key(sink.name, alert)
    try:
        was_open = store.get(key) is not None
    except CloudCircuitError as exc:
        report.notes.append(f"{sink.name}: cannot read {key}: {exc}")
        was_open = False
    if not was_open:
        report.skipped.append((sink.name, alert))
        return
    reason = attempts.send(sink, alert)
    if reason is not None:
        report.failed.append((sink.name, alert, reason))
        return
    report.sent.append((sink.name, alert))
    try:
        store.delete(key)
        for action in ("throttle", "block"):
            severity = SEVERITY_FOR_ACTION[action]
            store.delete(f"alert:{sink.name}:{alert.fingerprint}:{action}:{severity}")
    except CloudCircuitError as exc:
        report.notes.append(f"{sink.name}: cannot clear {key}: {exc}")


def _deliver(
    sink: Sink,
    alert: Alert,
    store: StateStore,
    ttl: float,
    report: DeliveryReport,
    attempts: _Attempts,
) -> None:
    key = dedup_key(sink.name, alert)
    claimed = False
    if ttl > 0:
        try:
            claimed = store.set_if_absent(
                key, {"run_id": alert.run_id, "at": alert.timestamp}, ttl=ttl
            )
        except CloudCircuitError as exc:
            report.notes.append(f"{sink.name}: de-duplication unavailable ({exc}); sending")
        else:
            if not claimed:
                report.suppressed.append((sink.name, alert))
                return
    reason = attempts.send(sink, alert)
    if reason is not None:
        report.failed.append((sink.name, alert, reason))
        if claimed:
            try:
                store.delete(key)
            except CloudCircuitError as exc:
                report.notes.append(f"{sink.name}: cannot release {key}: {exc}")
        return
    report.sent.append((sink.name, alert))
    if sink.sends_resolve:
        try:
            store.set(open_key(sink.name, alert), {"run_id": alert.run_id})
        except CloudCircuitError as exc:
            report.notes.append(f"{sink.name}: cannot remember the open incident: {exc}")


def dispatch(
    alerts: Iterable[Alert],
    sinks: Sequence[Sink],
    store: StateStore,
    *,
    dedup_seconds: float = 3600.0,
) -> DeliveryReport:
    """Deliver every alert to every sink that wants it; see the module docstring.

    ``dedup_seconds`` is the window for sinks without their own (0 turns it off).
    """
    if dedup_seconds < 0:
        raise InputError(f"dedup_seconds must be >= 0, got {dedup_seconds}")
    report = DeliveryReport()
    attempts = _Attempts()
    for alert in alerts:
        for sink in sinks:
            if alert.action == "allow" and sink.sends_resolve:
                _recover(sink, alert, store, report, attempts)
                continue
            if SEVERITY_RANK[alert.severity] < SEVERITY_RANK.get(sink.min_severity, 1):
                report.skipped.append((sink.name, alert))
                continue
            ttl = dedup_seconds if sink.dedup_seconds is None else sink.dedup_seconds
            _deliver(sink, alert, store, ttl, report, attempts)
    return report
