"""``cloudcircuit validate`` and ``cloudcircuit schema`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudcircuit.cli import app
from cloudcircuit.cli.app import EXIT_OK, EXIT_USAGE
from cloudcircuit.policy import policy_json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.yaml"

GOOD = """\
version: 1
sources:
  - name: demo
    type: focus
    path: data
budgets:
  - name: all
    period: month
    amount: 1000
  - name: daily
    period: day
    amount: 50
alerts:
  - name: hook
    type: webhook
    url: http://127.0.0.1:9/hook
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_prints_summary(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_OK, result.output
    assert f"{path}: ok (2 budgets, 1 source, 1 alert sink)" in result.stdout


def test_example_policy_is_valid(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == EXIT_OK, result.output
    assert "ok (4 budgets, 1 source, 1 alert sink)" in result.stdout


def test_quiet_prints_nothing_when_valid(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--quiet", str(write(tmp_path, GOOD))])
    assert result.exit_code == EXIT_OK
    assert result.stdout == ""


def test_every_error_with_its_path(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD.replace("amount: 50", "amount: -5\n    warning_ratio: 0").replace(
        "amount: 1000", "amout: 1000"
    )
    path = write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert f"{path}: budgets[0].amount: is required (line 7)" in lines
    assert f"{path}: budgets[0].amout: unknown key (did you mean 'amount'?) (line 9)" in lines
    assert f"{path}: budgets[1].amount: must be greater than 0 (line 12)" in lines
    assert f"{path}: budgets[1].warning_ratio: must be greater than 0 (line 13)" in lines
    assert "Traceback" not in result.output


def test_budgets_2_amount_example_from_the_issue(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD.replace("alerts:", "  - name: third\n    period: month\n    amount: 0\nalerts:")
    result = runner.invoke(app, ["validate", str(write(tmp_path, text))])
    assert result.exit_code == EXIT_USAGE
    assert "budgets[2].amount: must be greater than 0 (line 15)" in result.stderr


def test_malformed_yaml(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nbudgets:\n  - name: [oops\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith(f"{path}:4:1: malformed YAML")


def test_unknown_key(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    type: focus\n", "    type: focus\n    paht: x\n"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert "sources[0].paht: unknown key (did you mean 'path'?)" in result.stderr


def test_wrong_type(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("amount: 1000", "amount: lots"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert "budgets[0].amount: expected a number, got the text 'lots' (line 9)" in result.stderr


@pytest.mark.parametrize("text", ["", "\n# nothing here\n"])
def test_empty_file(runner: CliRunner, tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert f"{path}: the policy file is empty" in result.stderr


def test_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == EXIT_USAGE
    assert "nope.yaml: no such file" in result.stderr


def test_several_files_all_checked(runner: CliRunner, tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, GOOD.replace("period: day", "period: hour"), "bad.yaml")
    result = runner.invoke(app, ["validate", str(bad), str(good)])
    assert result.exit_code == EXIT_USAGE
    assert f"{bad}: budgets[1].period: must be 'day' or 'month'" in result.stderr
    assert f"{good}: ok" in result.stdout


def test_uninstalled_provider_is_a_note_not_an_error(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD.replace(
        "    amount: 50\n",
        "    amount: 50\n    block:\n      - action: stop\n        provider: nosuchcloud\n",
    )
    result = runner.invoke(app, ["validate", str(write(tmp_path, text))])
    assert result.exit_code == EXIT_OK, result.output
    assert "provider 'nosuchcloud' is not installed" in result.stderr
    assert "pip install cloudcircuit-nosuchcloud" in result.stderr


def test_markup_in_values_is_printed_verbatim(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("name: all", "name: '[bold]x'"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert "budget name '[bold]x'" in result.stderr


# -- schema ---------------------------------------------------------------------------------


def test_schema_prints_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == EXIT_OK
    assert json.loads(result.stdout) == policy_json_schema()
    assert result.stdout.startswith('{\n  "$defs"')  # indent 2


def test_schema_output_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "policy.schema.json"
    result = runner.invoke(app, ["schema", "--output", str(out)])
    assert result.exit_code == EXIT_OK
    assert json.loads(out.read_text()) == policy_json_schema()
    assert f"wrote {out}" in result.stdout


def test_unset_sink_variables_are_noted(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD + (
        "    secret_env: CC_TEST_HOOK_SECRET\n"
        "  - name: pd\n    type: pagerduty\n    routing_key_env: CC_TEST_PD_KEY\n"
    )
    path = write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)], env={"CC_TEST_PD_KEY": "k"})
    assert result.exit_code == EXIT_OK, result.output
    assert "alerts[0] (hook) reads CC_TEST_HOOK_SECRET, which is not set here" in result.stderr
    assert "CC_TEST_PD_KEY" not in result.stderr
