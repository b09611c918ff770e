"""`cloudcircuit demo` end to end: generated FOCUS data -> dry-run scan -> decisions, plan,
signed alerts to a loopback webhook, and the HTML report."""

from __future__ import annotations

import json
from typing import Any

DemoRun = Any  # tests/e2e/conftest.py's DemoRun (out, returncode, stdout, stderr)


def test_demo_exits_cleanly_and_says_where_the_report_is(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    report = demo_run.out / "report.html"
    assert report.is_file()
    assert f"file://{report}" in demo_run.stdout
    assert "Traceback" not in demo_run.stderr
    page = report.read_text()
    assert "alerts sent" in page and "ml-training" in page


def test_runaway_blocks_rising_throttles_healthy_allows(demo_run: DemoRun) -> None:
    data = json.loads((demo_run.out / "scan.json").read_text())
    actions = {d["budget"]: d["action"] for d in data["decisions"] if d["budget"] != "total-daily"}
    assert actions == {
        "ml-training": "block",
        "platform-services": "throttle",
        "data-storage": "allow",
    }
    assert data["dry_run"] is True
    ml = next(d for d in data["decisions"] if d["budget"] == "ml-training")
    assert {e["rule"] for e in ml["evidence"] if e["fired"]} >= {"spike"}
    platform = next(d for d in data["decisions"] if d["budget"] == "platform-services")
    assert [e["rule"] for e in platform["evidence"] if e["fired"]] == ["forecast"]


def test_demo_prints_decisions_plan_and_alerts(demo_run: DemoRun) -> None:
    out = " ".join(demo_run.stdout.split())
    for text in ("ml-training", "platform-services", "data-storage", "block", "throttle"):
        assert text in out
    assert "Enforcement plan" in out
    assert "received with a valid HMAC signature" in out
    sent = json.loads((demo_run.out / "scan.json").read_text())["alerts"]["sent"]
    assert {a["budget"] for a in sent} >= {"ml-training", "platform-services"}


def test_demo_data_and_state_stay_in_the_out_folder(demo_run: DemoRun) -> None:
    names = [p.name for p in (demo_run.out / "demo-data").iterdir()]
    assert any(n.startswith("focus-demo-") and n.endswith(".parquet") for n in names)
    assert (demo_run.out / "state.db").is_file()
