"""`cloudcircuit scan` and `cloudcircuit report` through Typer's CliRunner, on the demo FOCUS data
read by the real FOCUS source (DuckDB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudcircuit.cli import app
from cloudcircuit.cli.scan import scan_exit_code
from cloudcircuit.decision import Decision
from cloudcircuit.scan import ScanError, ScanResult

NOW = "2026-11-23T14:00:00Z"

RUNAWAY = """
  - name: ml-training
    scope: {account: ["222222222222"], tags: {team: ml}}
    period: month
    amount: 12000
    detectors: {spike: {action: block}}
"""
RISING = """
  - name: platform-services
    scope: {account: ["111111111111"], service: ["Amazon Elastic Container Service"]}
    period: month
    amount: 22000
    detectors: {forecast: {method: run_rate, breach_ratio: 0.9}}
"""
HEALTHY = """
  - name: data-storage
    scope: {account: ["111111111111"], service: ["Amazon Simple Storage Service"]}
    period: month
    amount: 6000
"""


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cloudcircuit.demo_data import generate_demo_dataset

    out = tmp_path_factory.mktemp("scan-cli") / "demo-data"
    return generate_demo_dataset(out, now=datetime(2026, 11, 23, 14, tzinfo=UTC), days=70)


def write_policy(tmp_path: Path, data: Path | str, *budgets: str, source: str = "") -> Path:
    source = source or f"  - {{name: demo, type: focus, path: '{data}'}}\n"
    text = (
        "version: 1\nsources:\n"
        + source
        + f"state: 'sqlite:///{tmp_path / 'state.db'}'\n"
        + "detectors: {spike: {min_baseline: 10}}\n"
        + "budgets:"
        + "".join(budgets)
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_scan_json_prints_decisions_with_evidence_only_on_stdout(
    tmp_path: Path, demo_data: Path
) -> None:
    policy = write_policy(tmp_path, demo_data, RUNAWAY, RISING, HEALTHY)
    code, out, _ = run("scan", "--policy", str(policy), "--json", "--now", NOW)
    data = json.loads(out)  # nothing but the JSON on stdout
    actions = {d["budget"]: d["action"] for d in data["decisions"]}
    assert actions == {
        "ml-training": "block",
        "platform-services": "throttle",
        "data-storage": "allow",
    }
    ml = next(d for d in data["decisions"] if d["budget"] == "ml-training")
    spike = next(e for e in ml["evidence"] if e["rule"] == "spike")
    assert spike["fired"] is True and spike["action"] == "block"
    assert set(spike) >= {"observed", "threshold", "expected", "detail"}
    assert data["dry_run"] is True and data["now"].startswith("2026-11-23T14:00")
    assert code == 11


def test_exit_codes_follow_the_worst_decision(tmp_path: Path, demo_data: Path) -> None:
    for budgets, expected in (((HEALTHY,), 0), ((RISING, HEALTHY), 10), ((RUNAWAY,), 11)):
        policy = write_policy(tmp_path, demo_data, *budgets)
        code, out, _ = run("scan", "--policy", str(policy), "--now", NOW)
        assert code == expected, out
    code, _, _ = run("scan", "--policy", str(policy), "--now", NOW, "--exit-zero")
    assert code == 0


def test_scan_prints_tables_and_writes_the_report(tmp_path: Path, demo_data: Path) -> None:
    policy = write_policy(tmp_path, demo_data, RUNAWAY, HEALTHY)
    html = tmp_path / "r.html"
    code, out, err = run(
        "scan", "--policy", str(policy), "--now", NOW, "--report", str(html), "--exit-zero"
    )
    assert code == 0
    assert "Decisions" in out and "ml-training" in out and "block" in out
    assert "spike" in out
    assert "Enforcement plan" in out
    assert html.is_file() and "<svg" in html.read_text()
    assert "report written to" in err


def test_report_command_writes_the_html(tmp_path: Path, demo_data: Path) -> None:
    policy = write_policy(tmp_path, demo_data, RUNAWAY, RISING)
    html = tmp_path / "sub" / "report.html"
    code, out, _ = run("report", "--policy", str(policy), "--html", str(html), "--now", NOW)
    assert code == 0
    assert "report written to" in out
    page = html.read_text()
    assert page.count("<svg") == 4  # two charts per scope
    assert "ml-training" in page and "platform-services" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--now", "yesterday"), "--now: 'yesterday' is not an ISO 8601 time"),
        (("--policy", "/nonexistent/policy.yaml"), "policy.yaml"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, demo_data: Path, args: tuple[str, ...], message: str
) -> None:
    policy = write_policy(tmp_path, demo_data, HEALTHY)
    argv = ["scan", "--policy", str(policy), *args]
    code, out, err = run(*argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_invalid_policy_exits_2_naming_the_field(tmp_path: Path, demo_data: Path) -> None:
    policy = write_policy(tmp_path, demo_data, HEALTHY.replace("amount: 6000", "amount: -1"))
    code, _, err = run("scan", "--policy", str(policy))
    assert code == 2
    assert "budgets[0].amount" in err


def test_missing_spend_data_exits_2(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, tmp_path / "no-such-folder", HEALTHY)
    code, out, _ = run("scan", "--policy", str(policy), "--now", NOW, "--json")
    assert code == 2
    data = json.loads(out)
    assert data["errors"][0]["kind"] == "input"
    assert "no-such-folder" in data["errors"][0]["message"]


def test_an_uninstalled_provider_source_exits_3(tmp_path: Path) -> None:
    source = "  - {name: cloud, type: nosuchcloud}\n"
    policy = write_policy(tmp_path, "", HEALTHY, source=source)
    code, out, _ = run("scan", "--policy", str(policy), "--now", NOW)
    assert code == 3
    assert "pip install cloudcircuit-nosuchcloud" in " ".join(out.split())


def _result(*actions: str, errors: tuple[str, ...] = ()) -> ScanResult:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    return ScanResult(
        run_id="r",
        started_at=now,
        finished_at=now,
        now=now,
        dry_run=True,
        decisions=[Decision("b", {}, a, "info", "") for a in actions],  # type: ignore[arg-type]
        errors=[ScanError(k, "x") for k in errors],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("actions", "errors", "exit_zero", "code"),
    [
        ((), (), False, 0),
        (("allow",), (), False, 0),
        (("allow", "throttle"), (), False, 10),
        (("throttle", "block"), (), False, 11),
        (("throttle", "block"), (), True, 0),
        (("block",), ("source",), False, 11),
        (("throttle",), ("source",), False, 3),
        (("allow",), ("incomplete",), False, 3),
        (("allow",), ("input", "source"), False, 2),
        (("allow",), ("enforcement",), False, 4),
        (("throttle",), ("enforcement",), True, 4),
        (("allow",), ("alerts",), False, 0),
    ],
)
def test_scan_exit_code_table(
    actions: tuple[str, ...], errors: tuple[str, ...], exit_zero: bool, code: int
) -> None:
    assert scan_exit_code(_result(*actions, errors=errors), exit_zero=exit_zero) == code
