"""Terraform module structure (python-hcl2) and a checkov scan in its own venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM = ROOT / "terraform"
MODULE = TERRAFORM / "modules" / "aws"
CHECKOV_VENV = ROOT / ".venv-checkov"


def load_tf(path: Path) -> dict[str, Any]:
    import hcl2
    from hcl2 import SerializationOptions

    with path.open() as f:
        data: dict[str, Any] = hcl2.load(
            f,
            serialization_options=SerializationOptions(
                strip_string_quotes=True, explicit_blocks=False
            ),
        )
    return data


def module_tf() -> dict[str, dict[str, Any]]:
    return {p.name: load_tf(p) for p in sorted(MODULE.glob("*.tf"))}


def test_module_files_exist() -> None:
    assert {p.name for p in MODULE.glob("*.tf")} == {
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
    }
    assert (TERRAFORM / "examples" / "aws" / "main.tf").is_file()


@pytest.mark.parametrize(
    "path", [MODULE / "variables.tf", TERRAFORM / "examples" / "aws" / "main.tf"]
)
def test_every_variable_typed_and_described(path: Path) -> None:
    variables = load_tf(path).get("variable", [])
    assert variables
    for block in variables:
        for name, body in block.items():
            assert body.get("type"), f"{path.name}: variable {name} has no type"
            assert str(body.get("description", "")).strip(), f"variable {name} has no description"


@pytest.mark.parametrize(
    "path", [MODULE / "outputs.tf", TERRAFORM / "examples" / "aws" / "main.tf"]
)
def test_every_output_described(path: Path) -> None:
    outputs = load_tf(path).get("output", [])
    assert outputs
    for block in outputs:
        for name, body in block.items():
            assert str(body.get("description", "")).strip(), f"output {name} has no description"


def test_module_has_the_required_pieces() -> None:
    main = module_tf()["main.tf"]
    kinds = {kind for block in main["resource"] for kind in block}
    assert {
        "aws_lambda_function",
        "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target",
        "aws_sns_topic_subscription",
        "aws_dynamodb_table",
        "aws_cloudwatch_log_group",
        "aws_iam_role",
        "aws_iam_role_policy",
    } <= kinds
    resources: dict[str, dict[str, Any]] = {}
    for block in main["resource"]:
        for kind, body in block.items():
            resources.setdefault(kind, {}).update(body)
    assert "count" in resources["aws_sns_topic_subscription"]["budgets"]
    table = resources["aws_dynamodb_table"]["state"]
    keys = {a["name"] for a in table["attribute"]}
    assert keys == {"pk", "sk"} and table["ttl"][0]["attribute_name"] == "expires_at"
    assert (
        resources["aws_cloudwatch_log_group"]["this"]["retention_in_days"]
        == "${var.log_retention_days}"
    )
    fn = resources["aws_lambda_function"]["this"]
    assert fn["handler"] == "cloudcircuit_aws.handler.handler"
    env = fn["environment"][0]["variables"]
    assert "enable_enforcement" in env["CLOUDCIRCUIT_ENFORCE"]


def test_mutating_actions_only_with_enable_enforcement() -> None:
    main = module_tf()["main.tf"]
    docs = {
        name: body
        for block in main["data"]
        for kind, d in block.items()
        if kind == "aws_iam_policy_document"
        for name, body in d.items()
    }
    assert "enable_enforcement" in docs["enforce"]["count"]
    read_actions = {
        a for s in docs["read"]["statement"] for a in s["actions"] if not a.startswith("${")
    }
    locals_ = main["locals"][0]
    assert not set(locals_["enforce_actions"]) & set(locals_["read_actions"])
    policies = {
        name: body
        for block in main["resource"]
        for kind, d in block.items()
        if kind == "aws_iam_role_policy"
        for name, body in d.items()
    }
    assert "enable_enforcement" in policies["enforce"]["count"]
    assert "count" not in policies["read"]
    assert not read_actions & set(locals_["enforce_actions"])


def _checkov() -> Path:
    exe = CHECKOV_VENV / "bin" / "checkov"
    if exe.exists():
        return exe
    if os.environ.get("CLOUDCIRCUIT_NO_CHECKOV_INSTALL"):
        pytest.skip("checkov is not installed in .venv-checkov (run `make checkov-venv`)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov>=3.2,<4"],
            check=True,
            timeout=900,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(
            f"checkov could not be installed in its own venv ({exc}); run `make checkov-venv`"
        )
    return exe


def test_checkov_passes_with_only_documented_suppressions() -> None:
    exe = _checkov()
    proc = subprocess.run(
        [
            str(exe),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--compact",
            "--quiet",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert not failed, [(c["check_id"], c["resource"], c.get("check_name")) for c in failed]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    for check in skipped:
        assert len(check.get("suppress_comment", "")) > 30, f"{check['check_id']}: justify the skip"
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 10 and proc.returncode == 0
