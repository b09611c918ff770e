"""Sinks and dispatch against a real HTTP server on a free loopback port (no mocks).

Retry delays are recorded through the poster's injectable ``sleep`` instead of waited out,
so the tests check which delay was chosen without timing anything.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cloudcircuit.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Alert,
    HttpPoster,
    PagerDutySink,
    RetryPolicy,
    SlackSink,
    WebhookSink,
    build_sinks,
    dispatch,
    parse_retry_after,
    verify_signature,
)
from cloudcircuit.decision import Evidence, combine
from cloudcircuit.errors import AlertDeliveryError, ConfigError
from cloudcircuit.state import MemoryStore, SQLiteStore

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
SCOPE = {"sub_account": "222222222222", "service": "Amazon Elastic Compute Cloud"}


# -- a loopback receiver --------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # path -> queued (status, headers, body); when empty: 200 "ok"
    script: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, path: str, *responses: tuple[int, dict[str, str], bytes]) -> None:
        with self.lock:
            self.script.setdefault(path, []).extend(responses)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                queued = state.script.get(self.path) or []
                status, headers, reply = queued.pop(0) if queued else (200, {}, b"ok")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _poster(sleeps: list[float], retries: int = 3, **kw: Any) -> HttpPoster:
    return HttpPoster(
        timeout=5.0,
        retry=RetryPolicy(retries=retries, backoff=0.2, max_backoff=1.0, **kw),
        sleep=sleeps.append,
        rng=random.Random(1),
    )


def _alert(action: str = "throttle", *, scope: dict[str, str] | None = None) -> Alert:
    evidence = [
        Evidence(
            rule="budget",
            fired=action != "allow",
            observed=920.0 if action == "throttle" else 1200.0 if action == "block" else 10.0,
            threshold=900.0,
            action="block" if action == "block" else "throttle",
            data={"budget_limit": 1000.0},
        ),
        Evidence(
            rule="spike",
            fired=action != "allow",
            observed=1080.0,
            threshold=270.0,
            expected=180.0,
            detail="latest 1080 > threshold 270 (baseline 180)",
        ),
    ]
    decision = combine("ml-research", scope or SCOPE, evidence)
    assert decision.action == action
    return Alert.from_decision(
        decision, service="cloudcircuit", environment="research", run_id="run-1", now=NOW
    )


# -- webhook --------------------------------------------------------------------------------


def test_webhook_body_and_signature(receiver: Receiver, sleeps: list[float]) -> None:
    sink = WebhookSink(
        "hook",
        f"{receiver.url}/hook",
        secret="s3cret",
        headers={"X-Team": "finops"},
        poster=_poster(sleeps),
    )
    alert = _alert()
    sink.send(alert)
    sink.close()
    (req,) = receiver.on("/hook")
    assert req.json() == alert.to_payload()
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Team"] == "finops"
    ts, sig = req.headers[TIMESTAMP_HEADER], req.headers[SIGNATURE_HEADER]
    assert sig.startswith("sha256=") and len(sig) == len("sha256=") + 64
    assert verify_signature("s3cret", ts, req.body, sig)
    assert not verify_signature("wrong", ts, req.body, sig)
    assert not verify_signature("s3cret", ts, req.body + b" ", sig)
    assert not verify_signature("s3cret", ts, req.body, sig, now=float(ts) + 301)
    assert verify_signature("s3cret", ts, req.body, sig, tolerance_seconds=None, now=0.0)
    assert not verify_signature("s3cret", "not-a-time", req.body, sig)


def test_webhook_without_secret_is_unsigned(receiver: Receiver, sleeps: list[float]) -> None:
    sink = WebhookSink("hook", f"{receiver.url}/plain", poster=_poster(sleeps))
    sink.send(_alert())
    (req,) = receiver.on("/plain")
    assert SIGNATURE_HEADER not in req.headers and TIMESTAMP_HEADER in req.headers


# -- slack ----------------------------------------------------------------------------------


def test_slack_block_kit_shape(receiver: Receiver, sleeps: list[float]) -> None:
    sink = SlackSink("slack", f"{receiver.url}/slack", poster=_poster(sleeps))
    sink.send(_alert("block"))
    (req,) = receiver.on("/slack")
    msg = req.json()
    assert "block" in msg["text"] and "ml-research" in msg["text"]
    header, section, context = msg["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert header["text"]["text"].startswith(":rotating_light: BLOCK: budget ml-research")
    assert len(header["text"]["text"]) <= 150
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    fields = section["fields"]
    assert 1 <= len(fields) <= 10 and all(f["type"] == "mrkdwn" for f in fields)
    texts = [f["text"] for f in fields]
    assert "*Spend*\n1,200.00 of 1,000.00 (120%)" in texts
    assert "*Latest vs threshold*\n1,080.00 vs 270.00" in texts
    assert any(t.startswith("*Scope*\nservice=Amazon Elastic Compute Cloud") for t in texts)
    assert context["type"] == "context"
    assert [e["text"].split("*")[1] for e in context["elements"]] == ["budget", "spike"]


# -- pagerduty ------------------------------------------------------------------------------


def test_pagerduty_event_shape(receiver: Receiver, sleeps: list[float]) -> None:
    sink = PagerDutySink("pd", "R0UTING", url=f"{receiver.url}/v2/enqueue", poster=_poster(sleeps))
    receiver.queue("/v2/enqueue", (202, {}, b'{"status":"success"}'))
    throttle, block = _alert("throttle"), _alert("block")
    sink.send(throttle)
    sink.send(block)
    first, second = (r.json() for r in receiver.on("/v2/enqueue"))
    assert first["routing_key"] == "R0UTING" and first["event_action"] == "trigger"
    assert first["dedup_key"] == second["dedup_key"]  # an escalation updates one incident
    assert first["dedup_key"] != PagerDutySink.dedup_key(_alert(scope={"service": "S3"}))
    p = first["payload"]
    assert p["severity"] == "warning" and second["payload"]["severity"] == "critical"
    assert p["source"] == "cloudcircuit/research"
    assert p["component"] == "ml-research" and p["class"] == "budget,spike"
    assert p["timestamp"] == "2026-11-23T04:00:00+00:00"
    assert len(p["summary"]) <= 1024 and "ml-research" in p["summary"]
    assert p["custom_details"] == throttle.to_payload()
    assert sink.event(_alert("allow")) == {
        "routing_key": "R0UTING",
        "event_action": "resolve",
        "dedup_key": first["dedup_key"],
    }


# -- retries --------------------------------------------------------------------------------


def test_retry_on_503_then_success(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/hook", (503, {}, b"busy"), (503, {}, b"busy"))
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps))
    sink.send(_alert())
    assert len(receiver.on("/hook")) == 3
    assert len(sleeps) == 2
    # equal jitter: retry n waits between half and all of backoff * 2**n
    assert 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4


def test_429_honours_retry_after_capped(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue(
        "/slack",
        (429, {"Retry-After": "7"}, b"rate_limited"),
        (429, {"Retry-After": "3600"}, b"rate_limited"),
    )
    sink = SlackSink("slack", f"{receiver.url}/slack", poster=_poster(sleeps, max_retry_after=30))
    sink.send(_alert())
    assert len(receiver.on("/slack")) == 3
    assert sleeps == [7.0, 30.0]


def test_gives_up_after_n_tries_and_reports(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/hook", *[(500, {}, b"boom")] * 5)
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps, retries=2))
    store = MemoryStore()
    report = dispatch([_alert()], [sink], store, dedup_seconds=600)
    assert len(receiver.on("/hook")) == 3
    assert report.sent == [] and not report.ok
    ((name, alert, reason),) = report.failed
    assert name == "hook" and alert.budget == "ml-research"
    assert "gave up after 3 attempts" in reason and "HTTP 500: boom" in reason


def test_dead_sink_is_not_retried_for_every_alert(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/down", *[(503, {}, b"down")] * 10)
    down = WebhookSink("down", f"{receiver.url}/down", poster=_poster(sleeps, retries=1))
    up = WebhookSink("up", f"{receiver.url}/up", poster=_poster(sleeps))
    alerts = [_alert("throttle"), _alert("block"), _alert("throttle", scope={"service": "S3"})]
    store = MemoryStore()
    report = dispatch(alerts, [down, up], store, dedup_seconds=600)
    assert len(receiver.on("/down")) == 2  # one retry cycle, not one per alert
    assert len(receiver.on("/up")) == 3 and len(report.sent) == 3
    reasons = [r for s, _, r in report.failed if s == "down"]
    assert len(reasons) == 3
    assert reasons[0].startswith("DeliveryGaveUpError: webhook sink 'down': gave up after 2")
    assert all(r.startswith("not attempted: sink gave up earlier") for r in reasons[1:])
    # nothing was deduplicated for the dead sink: the next scan tries all three again
    receiver.script.clear()
    again = dispatch(alerts, [down, up], store, dedup_seconds=600)
    assert [s for s, _ in again.sent] == ["down"] * 3 and len(again.suppressed) == 3


def test_other_4xx_is_not_retried(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/slack", (404, {}, b"no_service"))
    sink = SlackSink("slack", f"{receiver.url}/slack", poster=_poster(sleeps))
    with pytest.raises(AlertDeliveryError, match=r"slack sink 'slack': HTTP 404: no_service"):
        sink.send(_alert())
    assert len(receiver.on("/slack")) == 1 and sleeps == []


def test_connection_refused_is_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = WebhookSink("hook", f"http://127.0.0.1:{port}/x", poster=_poster(sleeps, retries=1))
    with pytest.raises(AlertDeliveryError, match="gave up after 2 attempts: ConnectError"):
        sink.send(_alert())
    assert len(sleeps) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(
        "Mon, 23 Nov 2026 04:00:30 GMT", now=datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    ) == pytest.approx(30.0)


# -- dispatch -------------------------------------------------------------------------------


def test_dedup_suppresses_and_escalation_goes_through(
    receiver: Receiver, sleeps: list[float], tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps))
    first = dispatch([_alert("throttle")], [sink], store, dedup_seconds=3600)
    again = dispatch([_alert("throttle")], [sink], store, dedup_seconds=3600)
    escalated = dispatch([_alert("block")], [sink], store, dedup_seconds=3600)
    other_scope = dispatch(
        [_alert("throttle", scope={"service": "S3"})], [sink], store, dedup_seconds=3600
    )
    assert [len(r.sent) for r in (first, again, escalated, other_scope)] == [1, 0, 1, 1]
    assert len(again.suppressed) == 1
    assert [r.json()["action"] for r in receiver.on("/hook")] == ["throttle", "block", "throttle"]
    store.close()


def test_dedup_window_expires(receiver: Receiver, sleeps: list[float]) -> None:
    store = MemoryStore()
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps))
    assert len(dispatch([_alert()], [sink], store, dedup_seconds=0.1).sent) == 1
    deadline = time.monotonic() + 10
    while True:  # wait for the window to pass; asserts nothing about how long it took
        report = dispatch([_alert()], [sink], store, dedup_seconds=0.1)
        if report.sent or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(report.sent) == 1


def test_failed_delivery_is_not_deduped(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/hook", (500, {}, b"down"))
    store = MemoryStore()
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps, retries=0))
    failed = dispatch([_alert()], [sink], store, dedup_seconds=3600)
    retried = dispatch([_alert()], [sink], store, dedup_seconds=3600)
    assert len(failed.failed) == 1 and failed.sent == []
    assert len(retried.sent) == 1 and retried.suppressed == []
    assert len(receiver.on("/hook")) == 2


def test_one_sink_failing_does_not_stop_others(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.queue("/bad", (400, {}, b"invalid_payload"))
    bad = SlackSink("bad", f"{receiver.url}/bad", poster=_poster(sleeps))
    good = WebhookSink("good", f"{receiver.url}/good", poster=_poster(sleeps))
    report = dispatch([_alert()], [bad, good], MemoryStore(), dedup_seconds=60)
    assert [s for s, _ in report.sent] == ["good"]
    assert [(s, r) for s, _, r in report.failed] == [
        (
            "bad",
            "AlertDeliveryError: slack sink 'bad': HTTP 400: invalid_payload "
            "(not retried: the receiver refused the request)",
        )
    ]
    assert report.to_dict()["failed"][0]["reason"].startswith("AlertDeliveryError")


def test_min_severity_and_sink_dedup(receiver: Receiver, sleeps: list[float]) -> None:
    critical_only = WebhookSink(
        "crit", f"{receiver.url}/crit", min_severity="critical", poster=_poster(sleeps)
    )
    no_dedup = WebhookSink("all", f"{receiver.url}/all", dedup_seconds=0, poster=_poster(sleeps))
    store = MemoryStore()
    for _ in range(2):
        report = dispatch([_alert("throttle")], [critical_only, no_dedup], store)
    assert [s for s, _ in report.skipped] == ["crit"]
    assert len(receiver.on("/all")) == 2 and receiver.on("/crit") == []
    healthy = dispatch([_alert("allow")], [critical_only, no_dedup], store)
    assert len(healthy.skipped) == 2 and healthy.sent == []


def test_pagerduty_resolves_what_it_triggered(receiver: Receiver, sleeps: list[float]) -> None:
    pd = PagerDutySink("pd", "KEY", url=f"{receiver.url}/pd", poster=_poster(sleeps))
    store = MemoryStore()
    quiet = dispatch([_alert("allow")], [pd], store)  # nothing open: nothing to resolve
    assert quiet.skipped and receiver.on("/pd") == []
    dispatch([_alert("block")], [pd], store)
    resolved = dispatch([_alert("allow")], [pd], store)
    again = dispatch([_alert("allow")], [pd], store)
    retrigger = dispatch([_alert("block")], [pd], store)  # a new incident is not suppressed
    assert len(resolved.sent) == 1 and again.skipped and len(retrigger.sent) == 1
    actions = [r.json()["event_action"] for r in receiver.on("/pd")]
    assert actions == ["trigger", "resolve", "trigger"]


def test_broken_store_still_delivers_and_says_so(receiver: Receiver, sleeps: list[float]) -> None:
    store = MemoryStore()
    store.close()
    sink = WebhookSink("hook", f"{receiver.url}/hook", poster=_poster(sleeps))
    report = dispatch([_alert()], [sink], store, dedup_seconds=60)
    assert len(report.sent) == 1
    assert report.notes and "de-duplication unavailable" in report.notes[0]


# -- build_sinks ----------------------------------------------------------------------------


def _configs(url: str) -> list[Any]:
    from cloudcircuit.policy import (
        PagerDutySinkConfig,
        SlackSinkConfig,
        WebhookSinkConfig,
    )

    return [
        WebhookSinkConfig(
            type="webhook", name="hook", url=f"{url}/hook", secret_env="CC_HOOK_SECRET", retries=1
        ),
        SlackSinkConfig(type="slack", name="slack", webhook_url_env="CC_SLACK_URL"),
        PagerDutySinkConfig(
            type="pagerduty",
            name="pd",
            routing_key_env="CC_PD_KEY",
            url=f"{url}/pd",
            min_severity="critical",
            dedup_minutes=5,
        ),
    ]


def test_build_sinks_from_policy_models(receiver: Receiver) -> None:
    env = {
        "CC_HOOK_SECRET": "topsecret",
        "CC_SLACK_URL": f"{receiver.url}/slack",
        "CC_PD_KEY": "PDKEY",
    }
    sinks = build_sinks(_configs(receiver.url), environ=env)
    assert [type(s).__name__ for s in sinks] == ["WebhookSink", "SlackSink", "PagerDutySink"]
    assert sinks[2].dedup_seconds == 300 and sinks[2].min_severity == "critical"
    report = dispatch([_alert("block")], sinks, MemoryStore())
    assert [s for s, _ in report.sent] == ["hook", "slack", "pd"]
    (hook,) = receiver.on("/hook")
    assert verify_signature(
        "topsecret", hook.headers[TIMESTAMP_HEADER], hook.body, hook.headers[SIGNATURE_HEADER]
    )
    assert receiver.on("/pd")[0].json()["routing_key"] == "PDKEY"
    for sink in sinks:
        sink.close()


def test_build_sinks_missing_env_names_every_variable() -> None:
    with pytest.raises(ConfigError) as info:
        build_sinks(_configs("http://127.0.0.1:9"), environ={"CC_SLACK_URL": "https://x"})
    message = str(info.value)
    assert "alerts[0].secret_env: environment variable CC_HOOK_SECRET is not set" in message
    assert "alerts[2].routing_key_env: environment variable CC_PD_KEY is not set" in message


def test_build_sinks_duplicate_names_and_unknown_type() -> None:
    @dataclass
    class Cfg:
        type: str
        name: str
        url: str = "http://127.0.0.1:9/x"
        min_severity: str = "warning"
        dedup_minutes: float = 60.0

    with pytest.raises(ConfigError) as info:
        build_sinks([Cfg("webhook", "a"), Cfg("webhook", "a"), Cfg("sms", "b")], environ={})
    message = str(info.value)
    assert "alerts[1].name: duplicate sink name 'a'" in message
    assert "alerts[2].type: unknown alert sink type 'sms'" in message
