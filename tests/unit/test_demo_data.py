"""demo_data: the fixed demo scenario as FOCUS 1.2 files, read back through FocusSource."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cloudcircuit.demo_data import demo_services, generate_demo_dataset
from cloudcircuit.errors import InputError
from cloudcircuit.providers import SpendQuery
from cloudcircuit.sources.focus import FocusSource
from cloudcircuit.sources.focus_columns import columns_of
from cloudcircuit.spend import Granularity

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # a Monday; 9 whole hours of today so far


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo"), now=NOW, days=21)


def _daily(folder: Path, group_by: tuple[str, ...], **kw: object) -> dict[str, object]:
    source = FocusSource(folder, now=NOW)
    result = source.fetch(
        SpendQuery(start=NOW - timedelta(days=21), end=NOW, group_by=group_by, **kw)  # type: ignore[arg-type]
    )
    return {s.key: s for s in result.series}


def test_files_are_focus_12_with_every_column(demo_dir: Path) -> None:
    files = sorted(p.name for p in demo_dir.iterdir())
    assert files == ["focus-demo-2026-11.parquet"] or files == [
        "focus-demo-2026-10.parquet",
        "focus-demo-2026-11.parquet",
    ]
    source = FocusSource(demo_dir)
    profile = source.profile()
    assert profile.versions == ["1.2"]
    assert set(profile.files[0].columns) == set(columns_of("1.2"))
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    row = con.execute(
        f"SELECT ChargeCategory, epoch(ChargePeriodEnd) - epoch(ChargePeriodStart), "
        f"BillingPeriodStart::VARCHAR, ResourceId, Tags, typeof(BilledCost) "
        f"FROM read_parquet('{demo_dir}/*.parquet') "
        f"WHERE ServiceName = 'Amazon Elastic Compute Cloud' "
        f"AND ResourceId LIKE '%instance/%' ORDER BY ChargePeriodStart DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    assert row[0] == "Usage" and row[1] == 3600
    assert row[2].startswith("2026-11-01 00:00:00")
    assert row[3].startswith("arn:aws:ec2:us-west-2:222222222222:instance/i-0")
    assert json.loads(row[4]) == {"team": "ml", "env": "research"}
    assert row[5] == "DOUBLE"


def test_runaway_last_complete_days_about_6x_and_partial_today(demo_dir: Path) -> None:
    series = _daily(demo_dir, ("sub_account", "service"))
    ec2 = series["sub_account=222222222222,service=Amazon Elastic Compute Cloud"]
    assert ec2.complete.tolist() == [True] * (len(ec2) - 1) + [False]
    done = ec2.completed()
    weekend = np.array([s.weekday() >= 5 for s in done.starts])
    # compare like with like: the runaway days (Sat 21, Sun 22 Nov) against earlier weekends
    before = done.amounts[:-2][weekend[:-2]].mean()
    ratio = done.amounts[-2:] / before
    assert np.all((ratio > 5.0) & (ratio < 7.0)), ratio
    weekday_base = done.amounts[:-2][~weekend[:-2]].mean()
    assert 165 < weekday_base < 195
    # today is partial: 9 whole hours at the runaway rate (~6 x 180 / 24 per hour)
    assert 9 * 6 * 180 / 24 * 0.8 < ec2.amounts[-1] < 9 * 6 * 180 / 24 * 1.2


def test_scenario_services_accounts_and_tags(demo_dir: Path) -> None:
    by_team = _daily(demo_dir, ("tag:team", "service"))
    assert set(by_team) == {
        "tag:team=ml,service=Amazon Elastic Compute Cloud",
        "tag:team=platform,service=Amazon Elastic Container Service",
        "tag:team=platform,service=AWS Lambda",
        "tag:team=platform,service=Amazon CloudWatch",
        "tag:team=data,service=Amazon Simple Storage Service",
        "tag:team=data,service=Amazon Relational Database Service",
    }
    by_account = _daily(demo_dir, ("account",))
    assert set(by_account) == {"sub_account=111111111111", "sub_account=222222222222"}
    healthy = {
        "AWS Lambda": 8,
        "Amazon CloudWatch": 15,
        "Amazon Relational Database Service": 60,
        "Amazon Simple Storage Service": 120,
    }
    for name, per_day in healthy.items():
        s = by_team[next(k for k in by_team if k.endswith(f"service={name}"))].completed()
        assert per_day * 0.8 < s.amounts.mean() < per_day * 1.1, name


def test_ecs_rises_about_1_2_percent_a_day(demo_dir: Path) -> None:
    ecs = _daily(demo_dir, ("service",), filters={"account": ("111111111111",)})[
        "service=Amazon Elastic Container Service"
    ].completed()
    weekdays = [
        (i, a)
        for i, (s, a) in enumerate(zip(ecs.starts, ecs.amounts, strict=True))
        if s.weekday() < 5
    ]
    (i0, a0), (i1, a1) = weekdays[0], weekdays[-1]
    growth = (a1 / a0) ** (1 / (i1 - i0))
    assert 1.005 < growth < 1.02
    expected = 820 * 1.012**-1  # yesterday, a Sunday: x0.85
    assert ecs.amounts[-1] == pytest.approx(expected * 0.85, rel=0.05)


def test_deterministic_for_seed_and_now_and_csv_format(tmp_path: Path) -> None:
    a = generate_demo_dataset(tmp_path / "a", now=NOW, days=3, seed=11, fmt="csv")
    b = generate_demo_dataset(tmp_path / "b", now=NOW, days=3, seed=11, fmt="csv")
    c = generate_demo_dataset(tmp_path / "c", now=NOW, days=3, seed=12, fmt="csv")
    name = "focus-demo-2026-11.csv"
    assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / name).read_bytes() != (c / name).read_bytes()
    # regenerating into the same folder replaces the old files instead of adding to them
    generate_demo_dataset(a, now=NOW, days=3, seed=11, fmt="parquet")
    assert sorted(p.name for p in a.iterdir()) == ["focus-demo-2026-11.parquet"]
    csv_total = (
        FocusSource(b)
        .fetch(SpendQuery(start=NOW - timedelta(days=3), end=NOW, granularity=Granularity.MONTH))
        .series[0]
        .total()
    )
    parquet_total = (
        FocusSource(a)
        .fetch(SpendQuery(start=NOW - timedelta(days=3), end=NOW, granularity=Granularity.MONTH))
        .series[0]
        .total()
    )
    assert csv_total == pytest.approx(parquet_total, rel=1e-12)


def test_expected_cost_model_and_bad_arguments(tmp_path: Path) -> None:
    ec2 = next(s for s in demo_services() if s.account == "222222222222")
    assert ec2.expected_cost(5, weekend=False) == pytest.approx(180.0)
    assert ec2.expected_cost(1, weekend=True) == pytest.approx(180.0 * 0.6 * 6)
    with pytest.raises(InputError, match="days"):
        generate_demo_dataset(tmp_path, now=NOW, days=0)
