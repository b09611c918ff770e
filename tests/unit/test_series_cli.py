"""``cloudcircuit series``: CSV, JSON and table output, errors as exit code 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudcircuit.cli import app

runner = CliRunner()

HEADER = (
    "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
    "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargePeriodEnd,"
    "ChargePeriodStart,ContractedCost,EffectiveCost,InvoiceIssuerName,ListCost,PricingQuantity,"
    "PricingUnit,ProviderName,PublisherName,ServiceCategory,ServiceName,Tags"
)


def _line(cost: str, start: str, end: str, service: str, tags: str = "NULL", eff: str = "") -> str:
    effective = eff or cost
    return (
        f"{cost},a,A,USD,2024-10-01,2024-09-01,Usage,NULL,x,{end},{start},{cost},{effective},"
        f"AWS,{cost},1,Hours,AWS,AWS,Compute,{service},{tags}"
    )


@pytest.fixture()
def focus_csv(tmp_path: Path) -> Path:
    lines = [
        HEADER,
        _line("1.5", "2024-09-01 00:00:00", "2024-09-01 01:00:00", "EC2", '"{""team"": ""ml""}"'),
        _line("2.25", "2024-09-01 05:00:00", "2024-09-01 06:00:00", "S3", eff="0.5"),
        _line("4", "2024-09-03 00:00:00", "2024-09-03 01:00:00", "EC2", '"{""team"": ""ml""}"'),
    ]
    path = tmp_path / "focus.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_output_one_row_per_bucket_and_group(focus_csv: Path) -> None:
    result = runner.invoke(
        app,
        [
            "series",
            "--source",
            f"focus:{focus_csv}",
            "--group-by",
            "provider,service",
            "--granularity",
            "day",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["date", "provider", "service", "amount", "currency", "complete"]
    assert rows[1:] == [
        ["2024-09-01", "AWS", "EC2", "1.5", "USD", "true"],
        ["2024-09-01", "AWS", "S3", "2.25", "USD", "true"],
        ["2024-09-02", "AWS", "EC2", "0.0", "USD", "true"],
        ["2024-09-02", "AWS", "S3", "0.0", "USD", "true"],
        ["2024-09-03", "AWS", "EC2", "4.0", "USD", "false"],
        ["2024-09-03", "AWS", "S3", "0.0", "USD", "false"],
    ]


def test_json_output_effective_basis_and_tag_group(focus_csv: Path) -> None:
    result = runner.invoke(
        app,
        [
            "series",
            "-s",
            f"focus:{focus_csv}",
            "-g",
            "tag:team",
            "--format",
            "json",
            "--cost-basis",
            "effective",
            "--start",
            "2024-09-01",
            "--end",
            "2024-09-02",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"date": "2024-09-01", "tag:team": "", "amount": 0.5, "currency": "USD", "complete": True},
        {
            "date": "2024-09-01",
            "tag:team": "ml",
            "amount": 1.5,
            "currency": "USD",
            "complete": True,
        },
    ]


def test_filters_and_hourly_buckets(focus_csv: Path) -> None:
    result = runner.invoke(
        app,
        [
            "series",
            "-s",
            f"focus:{focus_csv}",
            "-g",
            "service",
            "--granularity",
            "hour",
            "--filter",
            "service=S3",
            "--start",
            "2024-09-01T04:00:00Z",
            "--end",
            "2024-09-01T07:00:00",
            "-f",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "2024-09-01T04:00:00Z,S3,0.0,USD,true",
        "2024-09-01T05:00:00Z,S3,2.25,USD,true",
        "2024-09-01T06:00:00Z,S3,0.0,USD,true",
    ]


def test_table_is_the_default(focus_csv: Path) -> None:
    result = runner.invoke(app, ["series", "--source", f"focus:{focus_csv}", "-g", "service"])
    assert result.exit_code == 0, result.output
    assert "Daily spend (billed)" in result.stdout
    assert "2.25" in result.stdout and "EC2" in result.stdout and "no" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "focus:/no/such/file.csv"], "no such file or folder"),
        (["--source", "focus:{csv}", "--group-by", "colour"], "unknown dimension 'colour'"),
        (["--source", "focus:{csv}", "--start", "yesterday"], "--start 'yesterday'"),
        (["--source", "focus:{csv}", "--filter", "service"], "expected DIMENSION=VALUE"),
        (["--source", "focus:{csv}", "--start", "2024-09-05", "--end", "2024-09-01"], "not after"),
    ],
)
def test_bad_input_exits_2_with_one_line(focus_csv: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["series", *[a.replace("{csv}", str(focus_csv)) for a in args]])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_data_exits_2_naming_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n" + _line("NaN", "2024-09-01", "2024-09-02", "EC2") + "\n")
    result = runner.invoke(app, ["series", "--source", f"focus:{path}", "--format", "csv"])
    assert result.exit_code == 2
    assert "bad.csv" in result.stderr and "row 1" in result.stderr and "BilledCost" in result.stderr
    assert result.stdout == ""


def test_an_error_is_one_unwrapped_line_taken_literally(tmp_path: Path) -> None:
    """However long the path, the error is one line (not wrapped at the terminal width), and
    brackets in it are text, not rich markup."""
    folder = tmp_path / ("x" * 120)
    folder.mkdir()
    path = folder / "bad.csv"
    path.write_text(HEADER + "\n" + _line("[red]1", "2024-09-01", "2024-09-02", "EC2") + "\n")
    result = runner.invoke(app, ["series", "--source", f"focus:{path}", "--format", "csv"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{path}, row 1, field BilledCost" in result.stderr
    assert "[red]1" in result.stderr


def test_demo_folder_shows_the_runaway_and_the_partial_day(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cloudcircuit.demo_data import generate_demo_dataset

    folder = generate_demo_dataset(
        tmp_path / "demo", now=datetime(2026, 11, 23, 9, tzinfo=UTC), days=7
    )
    result = runner.invoke(
        app,
        [
            "series",
            "-s",
            f"focus:{folder}",
            "-g",
            "account,service",
            "--format",
            "json",
            "--filter",
            "tag:team=ml",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["service"] for r in rows} == {"Amazon Elastic Compute Cloud"}
    assert [r["date"] for r in rows][-3:] == ["2026-11-21", "2026-11-22", "2026-11-23"]
    assert [r["complete"] for r in rows][-2:] == [True, False]
    assert rows[0]["date"] == "2026-11-16"  # 7 whole days before Monday the 23rd
    weekdays = [r["amount"] for r in rows[:5]]  # Mon 16 .. Fri 20: the normal ~180/day
    assert all(150 < a < 210 for a in weekdays)
    # Sat 21 and Sun 22: weekend rate (x0.6) times the runaway (x6)
    for r in rows[5:7]:
        assert 5 < r["amount"] / (sum(weekdays) / 5 * 0.6) < 7
