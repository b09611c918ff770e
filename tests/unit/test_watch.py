"""`cloudcircuit watch`: scans on a schedule, serves /metrics over HTTP, stops itself."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from cloudcircuit.cli import app
from cloudcircuit.cli.watch import Watcher
from cloudcircuit.demo_data import generate_demo_dataset

POLICY = """\
version: 1
sources:
  - name: demo
    type: focus
    path: "{data}"
state: "sqlite:///{state}"
defaults:
  granularity: day
  lookback_days: 21
  settle_hours: 0
detectors:
  seasonal:
    enabled: true
budgets:
  - name: ml
    scope:
      account: ["222222222222"]
    period: month
    amount: 6000
  - name: storage
    scope:
      service: ["Amazon Simple Storage Service"]
    period: month
    amount: 6000
"""


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo"), days=24)


def _policy(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(data=data, state=tmp_path / "state.db"))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }


def test_watch_serves_metrics_and_stops_itself(tmp_path: Path, demo_data: Path) -> None:
    policy = _policy(tmp_path, demo_data)
    port = _free_port()
    outcome: dict[str, object] = {}

    def run() -> None:
        result = CliRunner().invoke(
            app,
            [
                *("watch", "--policy", str(policy), "--interval", "1s"),
                *("--port", str(port), "--max-scans", "3"),
            ],
        )
        outcome["result"] = result

    thread = threading.Thread(target=run)
    thread.start()
    body = ""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while time.monotonic() < deadline and thread.is_alive():
            try:
                response = client.get("/metrics")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            if 'cloudcircuit_scans_total{outcome="success"} 2.0' in response.text:
                body = response.text
                health = client.get("/healthz")
                assert health.status_code == 200 and health.json()["last_ok"] is True
                assert client.get("/nope").status_code == 404
                break
            time.sleep(0.05)
    thread.join(timeout=60)
    assert not thread.is_alive(), "watch did not stop after --max-scans"
    result = outcome["result"]
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "stopped after 3 scans" in result.output  # type: ignore[attr-defined]
    assert body, "never saw two successful scans on /metrics"
    samples = _samples(body)
    ml = (("budget", "ml"), ("scope", "sub_account=222222222222"))
    names = {name for name, _ in samples}
    assert {
        "cloudcircuit_budget_usage_ratio",
        "cloudcircuit_burn_rate",
        "cloudcircuit_decision",
        "cloudcircuit_source_freshness_seconds",
        "slo_success_ratio",
    } <= names
    usage = [v for (n, labels), v in samples.items() if n == "cloudcircuit_budget_usage_ratio"]
    assert len(usage) == 2 and all(v > 0 for v in usage)
    burn = {
        dict(labels)["pair"] + ":" + dict(labels)["window"]: v
        for (n, labels), v in samples.items()
        if n == "cloudcircuit_burn_rate" and dict(labels)["budget"] == "ml"
    }
    assert set(burn) == {"2d/1d:long", "2d/1d:short", "3d/1d:long", "3d/1d:short"}
    assert burn["2d/1d:short"] > 3  # the runaway GPU cluster: about 6x its usual pace
    fired_rules = {
        dict(labels)["rule"] for (n, labels), _ in samples.items() if n == "cloudcircuit_rule_fired"
    }
    assert "seasonal" in fired_rules
    decision = [v for (n, labels), v in samples.items() if n == "cloudcircuit_decision"]
    assert max(decision) >= 1
    assert samples[("cloudcircuit_decision", ml)] >= 1
    assert samples[("slo_total", (("slo", "scan_success"),))] == 2
    assert samples[("slo_success_ratio", (("slo", "scan_success"),))] == 1.0
    assert samples[("cloudcircuit_source_freshness_seconds", (("source", "demo"),))] < 86400


def test_a_failing_scan_counts_against_the_scan_slo(tmp_path: Path, demo_data: Path) -> None:
    policy = _policy(tmp_path, demo_data)
    watcher = Watcher(policy, interval=60, port=0, slo_target=0.9)
    port = watcher.start_server()
    try:
        assert watcher.scan_once()
        policy.write_text("version: 1\nbudgets: [{name: x}]\n")  # no longer a valid policy
        assert not watcher.scan_once()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            health = client.get("/healthz")
            assert health.status_code == 503
            assert "budgets" in health.json()["last_error"]
            samples = _samples(client.get("/metrics").text)
    finally:
        watcher.stop()
        watcher.run()  # returns at once (stopped), shutting the server down
    assert samples[("cloudcircuit_scans_total", (("outcome", "failure"),))] == 1
    assert samples[("cloudcircuit_scans_total", (("outcome", "success"),))] == 1
    slo = (("slo", "scan_success"),)
    assert samples[("slo_success_ratio", slo)] == 0.5
    assert samples[("slo_breached", slo)] == 1.0
    assert samples[("slo_burn_rate", (*slo, ("window_seconds", "3600")))] == pytest.approx(5.0)


def test_watch_rejects_bad_arguments(tmp_path: Path, demo_data: Path) -> None:
    policy = _policy(tmp_path, demo_data)
    runner = CliRunner()
    bad = runner.invoke(app, ["watch", "--policy", str(policy), "--interval", "soon"])
    assert bad.exit_code == 2 and "--interval" in bad.output
    missing = runner.invoke(app, ["watch", "--policy", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
