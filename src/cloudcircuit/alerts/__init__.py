"""Alerts: the 0.3 payload with evidence, sinks (webhook, Slack, PagerDuty) and dispatch.

Typical use in a scan::

    alerts = [
        Alert.from_decision(d, service=svc, environment=env, run_id=run_id) for d in decisions
    ]
    sinks = build_sinks(policy.alerts)
    report = dispatch(alerts, sinks, store, dedup_seconds=3600)
    # report.sent / report.suppressed / report.failed[(sink, alert, reason)]
"""

from cloudcircuit.alerts.config import SinkConfigLike, build_sinks
from cloudcircuit.alerts.dispatch import DeliveryReport, dedup_key, dispatch, open_key
from cloudcircuit.alerts.payload import Alert, jsonable, scope_fingerprint
from cloudcircuit.alerts.sinks import (
    PAGERDUTY_EVENTS_URL,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PagerDutySink,
    Sink,
    SlackSink,
    WebhookSink,
    sign,
    verify_signature,
)
from cloudcircuit.alerts.transport import (
    DeliveryGaveUpError,
    HttpPoster,
    RetryPolicy,
    parse_retry_after,
)

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "DeliveryGaveUpError",
    "DeliveryReport",
    "HttpPoster",
    "PagerDutySink",
    "RetryPolicy",
    "Sink",
    "SinkConfigLike",
    "SlackSink",
    "WebhookSink",
    "build_sinks",
    "dedup_key",
    "dispatch",
    "jsonable",
    "open_key",
    "parse_retry_after",
    "scope_fingerprint",
    "sign",
    "verify_signature",
]
