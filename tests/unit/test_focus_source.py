"""FocusSource: FOCUS CSV/Parquet through DuckDB into zero-filled spend series.

Small FOCUS files are written into tmp_path; the FinOps Foundation sample
(../shared/data/focus_sample_data_finops, CC BY 4.0, see its SOURCE.txt) checks the sums.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from cloudcircuit.errors import (
    ConfigError,
    CurrencyMismatchError,
    DataError,
    InputError,
    ProviderNotInstalledError,
    SchemaError,
)
from cloudcircuit.providers import SpendQuery, SpendSource
from cloudcircuit.sources import open_source
from cloudcircuit.sources.focus import FocusSource
from cloudcircuit.sources.focus_columns import columns_of, mandatory_columns
from cloudcircuit.spend import CostBasis, Granularity

D = datetime(2024, 9, 1, tzinfo=UTC)


def row(**over: Any) -> dict[str, Any]:
    """A FOCUS row with every 1.0 Mandatory column; ``over`` replaces values."""
    start = over.pop("start", D)
    base: dict[str, Any] = {
        "BilledCost": "1.0",
        "BillingAccountId": "acct",
        "BillingAccountName": "Acme",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": "2024-10-01T00:00:00Z",
        "BillingPeriodStart": "2024-09-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "NULL",
        "ChargeDescription": "usage",
        "ChargePeriodEnd": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ChargePeriodStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ContractedCost": "1.0",
        "EffectiveCost": "1.0",
        "InvoiceIssuerName": "AWS",
        "ListCost": "1.0",
        "PricingQuantity": "1",
        "PricingUnit": "Hours",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "ServiceCategory": "Compute",
        "ServiceName": "EC2",
        "SubAccountId": "111",
        "RegionId": "us-east-1",
        "ResourceId": "i-1",
        "Tags": json.dumps({"team": "ml"}),
    }
    base.update(over)
    return base


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None
) -> Path:
    cols = list(columns) if columns is not None else list(rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", quoting=csv.QUOTE_MINIMAL)
        w.writeheader()
        w.writerows(rows)
    return path


def to_parquet(csv_path: Path, out: Path, *, tags_as_map: bool = False) -> Path:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    rel = f"read_csv('{csv_path}', all_varchar=true, nullstr=['NULL',''])"
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    exprs = []
    for c in cols:
        if c in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity"):
            exprs.append(f"CAST({c} AS DOUBLE) AS {c}")
        elif c.endswith(("PeriodStart", "PeriodEnd")):
            exprs.append(f"CAST({c} AS TIMESTAMPTZ) AS {c}")
        elif c == "Tags" and tags_as_map:
            exprs.append("CAST(Tags::JSON AS MAP(VARCHAR, VARCHAR)) AS Tags")
        else:
            exprs.append(c)
    con.execute(f"COPY (SELECT {', '.join(exprs)} FROM {rel}) TO '{out}' (FORMAT parquet)")
    con.close()
    return out


def q(
    start: datetime = D,
    days: int = 3,
    group_by: tuple[str, ...] = (),
    **kw: Any,
) -> SpendQuery:
    return SpendQuery(start=start, end=start + timedelta(days=days), group_by=group_by, **kw)


def by_scope(source: SpendSource, query: SpendQuery) -> dict[tuple[str, ...], list[float]]:
    result = source.fetch(query)
    return {tuple(s.scope.values()): [float(a) for a in s.amounts] for s in result.series}


# -- the FinOps Foundation sample --------------------------------------------------------


def test_sample_reproduces_expected_daily_by_provider_service(shared_data: Path) -> None:
    folder = shared_data / "focus_sample_data_finops"
    source = FocusSource(folder / "focus_sample.csv")
    result = source.fetch(
        SpendQuery(
            start=datetime(2024, 9, 1, tzinfo=UTC),
            end=datetime(2024, 10, 1, tzinfo=UTC),
            group_by=("provider", "service"),
        )
    )
    got: dict[tuple[str, str, str], float] = {}
    for s in result.series:
        assert s.currency == "USD"
        assert len(s.starts) == 30 and bool(s.complete.all())
        for start, amount in zip(s.starts, s.amounts, strict=True):
            got[(start.date().isoformat(), s.scope["provider"], s.scope["service"])] = float(amount)
    with (folder / "expected_daily_by_provider_service.csv").open() as fh:
        expected = list(csv.DictReader(fh))
    assert len(expected) > 200
    seen = set()
    for e in expected:
        key = (e["date"], e["ProviderName"], e["ServiceName"])
        seen.add(key)
        assert got[key] == pytest.approx(float(e["BilledCost_sum"]), abs=1e-9), key
    # every other (day, provider, service) is a zero-filled bucket, not a hole or stray spend
    assert all(v == 0.0 for k, v in got.items() if k not in seen)
    assert result.stats.rows_read == 1000
    assert result.stats.freshness == datetime(2024, 10, 1, tzinfo=UTC)


def test_sample_totals_by_provider_both_bases(shared_data: Path) -> None:
    folder = shared_data / "focus_sample_data_finops"
    source = FocusSource(folder / "focus_sample.csv")
    with (folder / "expected_totals_by_provider.csv").open() as fh:
        expected = {r["ProviderName"]: r for r in csv.DictReader(fh)}
    for basis, column in (
        (CostBasis.BILLED, "BilledCost_sum"),
        (CostBasis.EFFECTIVE, "EffectiveCost_sum"),
    ):
        query = SpendQuery(
            start=datetime(2024, 9, 1, tzinfo=UTC),
            end=datetime(2024, 10, 1, tzinfo=UTC),
            granularity=Granularity.MONTH,
            cost_basis=basis,
            group_by=("provider",),
        )
        totals = {k[0]: v[0] for k, v in by_scope(source, query).items()}
        for provider in ("AWS", "Microsoft", "Oracle"):
            assert totals[provider] == pytest.approx(float(expected[provider][column]), abs=1e-9)


def test_sample_credit_row_stays_negative(shared_data: Path, tmp_path: Path) -> None:
    # the sample's one Credit row (AWS, BilledCost -2.6137) lowers spend; nothing takes abs()
    sample = shared_data / "focus_sample_data_finops" / "focus_sample.csv"
    con = duckdb.connect()
    credit = tmp_path / "credit.csv"
    con.execute(
        f"COPY (SELECT * FROM read_csv('{sample}', all_varchar=true) "
        f"WHERE ChargeCategory = 'Credit') TO '{credit}' (HEADER, FORCE_QUOTE *)"
    )
    totals = by_scope(
        FocusSource(credit), q(datetime(2024, 9, 1, tzinfo=UTC), 30, granularity=Granularity.MONTH)
    )
    assert totals[()][0] == pytest.approx(-2.6137, abs=1e-9)


NOT_FOCUS = [
    "koku_test_billing_samples/aws/test_cur.csv",
    "koku_test_billing_samples/aws/2022-07-01-alt-columns.csv",
    "koku_test_billing_samples/azure/camel_azure_version_2.csv",  # DuckDB cannot sniff it
    "koku_test_billing_samples/gcp/2022-08-01_5.csv",
    "koku_test_billing_samples/oci/reports_cost-csv_0001000000603747.csv",
    "azure_finops_toolkit/ea_cost_exports/EA_ActualCost_Small.csv",
    "azure_finops_toolkit/ea_cost_exports/EA_NoRows.csv",
]


@pytest.mark.parametrize("name", NOT_FOCUS)
def test_other_billing_dialects_are_not_focus(shared_data: Path, name: str) -> None:
    # CUR, Azure EA/MCA, GCP and OCI exports (koku fixtures, finops-toolkit): each is refused
    # by its missing FOCUS columns, never by a parser traceback or silently wrong numbers
    path = shared_data / name
    with pytest.raises(SchemaError) as err:
        FocusSource(path).fetch(q())
    assert str(err.value).startswith(f"{path}: not a FOCUS 1.0 file: missing required column(s)")
    assert "BilledCost" in str(err.value)


def test_spec_example_with_impossible_timestamp(shared_data: Path, tmp_path: Path) -> None:
    path = (
        shared_data
        / "focus_spec"
        / "data"
        / "commitment_discount_scenarios"
        / "commitment_discount_purchase_scenario_2.csv"
    )
    # the spec's illustration has no BillingCurrency: even strict=False needs that one
    with pytest.raises(SchemaError, match="BillingCurrency"):
        FocusSource(path, strict=False).fetch(q())
    with path.open(newline="") as fh:
        rows = [{**r, "BillingCurrency": "USD"} for r in csv.DictReader(fh)]
    copy = write_csv(tmp_path / path.name, rows)
    with pytest.raises(DataError) as err:
        FocusSource(copy, strict=False).fetch(q())
    assert (err.value.row, err.value.field) == (3, "ChargePeriodEnd")
    assert "2023-02-01T30:00:00Z" in str(err.value)


# -- versions and columns -----------------------------------------------------------------


def test_embedded_column_lists_match_the_spec(shared_data: Path) -> None:
    spec = json.loads((shared_data / "focus_spec" / "focus_columns_by_version.json").read_text())
    for version in ("1.0", "1.1", "1.2"):
        entries = spec[f"v{version}"]
        assert columns_of(version) == tuple(e["column"] for e in entries)
        assert mandatory_columns(version) == tuple(
            e["column"] for e in entries if e["feature_level"] == "Mandatory"
        )
    assert (len(columns_of("1.0")), len(columns_of("1.1")), len(columns_of("1.2"))) == (43, 50, 57)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_full_column_set_of_each_version_is_detected(tmp_path: Path, version: str) -> None:
    columns = columns_of(version)
    values = row()
    path = write_csv(tmp_path / "f.csv", [{c: values.get(c, "") for c in columns}], columns)
    source = FocusSource(path)
    assert source.profile().versions == [version]
    assert by_scope(source, q())[()] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_missing_mandatory_column_names_file_version_and_column(
    tmp_path: Path, version: str
) -> None:
    columns = [c for c in columns_of(version) if c not in ("ServiceCategory", "InvoiceIssuerName")]
    values = row()
    path = write_csv(tmp_path / "bad.csv", [{c: values.get(c, "") for c in columns}], columns)
    with pytest.raises(SchemaError) as err:
        FocusSource(path, version=version).fetch(q())
    msg = str(err.value)
    assert str(path) in msg and f"FOCUS {version}" in msg
    assert "InvoiceIssuerName" in msg and "ServiceCategory" in msg


def test_declared_version_and_unsupported_version(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [row()])
    assert FocusSource(path, version="v1.2").profile().versions == ["1.2"]
    with pytest.raises(InputError, match=r"supported: 1\.0, 1\.1, 1\.2"):
        FocusSource(path, version="1.3")


def test_non_strict_needs_only_the_columns_read(tmp_path: Path) -> None:
    cols = ["ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "BillingCurrency", "ServiceName"]
    path = write_csv(tmp_path / "min.csv", [row()], cols)
    with pytest.raises(SchemaError):
        FocusSource(path).fetch(q())
    assert by_scope(FocusSource(path, strict=False), q(group_by=("service",)))[("EC2",)][0] == 1.0
    with pytest.raises(SchemaError, match="EffectiveCost"):
        FocusSource(path, strict=False).fetch(q(cost_basis=CostBasis.EFFECTIVE))
    with pytest.raises(SchemaError, match="RegionId"):
        FocusSource(path, strict=False).fetch(q(group_by=("region",)))


# -- inputs: glob, folder, parquet ----------------------------------------------------------


def test_folder_glob_and_mixed_formats(tmp_path: Path) -> None:
    data = tmp_path / "exports"
    write_csv(data / "2024-09" / "a.csv", [row(BilledCost="1.5")])
    write_csv(data / "2024-09" / "b.csv", [row(BilledCost="2.5", start=D + timedelta(days=1))])
    staged = write_csv(tmp_path / "c.csv", [row(BilledCost="4", start=D + timedelta(days=2))])
    to_parquet(staged, data / "c.parquet")
    (data / "README.md").write_text("not a billing file")

    assert by_scope(FocusSource(data), q())[()] == [1.5, 2.5, 4.0]
    assert by_scope(FocusSource(f"{data}/**/*.csv"), q())[()] == [1.5, 2.5, 0.0]
    assert by_scope(FocusSource(str(data / "*.parquet")), q())[()] == [0.0, 0.0, 4.0]
    assert FocusSource(data).fetch(q()).stats.notes[0].startswith("3 file(s)")
    with pytest.raises(DataError, match="matches no"):
        FocusSource(str(data / "*.json")).fetch(q())
    with pytest.raises(DataError, match="no such file"):
        FocusSource(tmp_path / "nope").fetch(q())


def test_parquet_with_map_tags_and_typed_columns(tmp_path: Path) -> None:
    staged = write_csv(
        tmp_path / "s.csv",
        [
            row(),
            row(Tags=json.dumps({"team": "data"}), BilledCost="2"),
            row(Tags="NULL", BilledCost="4"),
        ],
    )
    path = to_parquet(staged, tmp_path / "m.parquet", tags_as_map=True)
    got = by_scope(FocusSource(path), q(group_by=("tag:team",)))
    assert got == {("",): [4.0, 0, 0], ("data",): [2.0, 0, 0], ("ml",): [1.0, 0, 0]}


# -- values --------------------------------------------------------------------------------


def test_null_and_empty_strings_are_null(tmp_path: Path) -> None:
    rows = [
        row(RegionId="NULL", Tags="NULL"),
        row(RegionId="", Tags="", BilledCost="2"),
        row(RegionId="null", BilledCost="4"),
        row(BilledCost="8"),
    ]
    source = FocusSource(write_csv(tmp_path / "n.csv", rows))
    assert by_scope(source, q(group_by=("region",))) == {
        ("",): [7.0, 0, 0],
        ("us-east-1",): [8.0, 0, 0],
    }
    assert by_scope(source, q(group_by=("tag:team",))) == {
        ("",): [3.0, 0, 0],
        ("ml",): [12.0, 0, 0],
    }


def test_credits_stay_negative(tmp_path: Path) -> None:
    rows = [
        row(BilledCost="10"),
        row(ChargeCategory="Credit", BilledCost="-3.25", EffectiveCost="-3.25"),
    ]
    assert by_scope(FocusSource(write_csv(tmp_path / "c.csv", rows)), q())[()][0] == 6.75


def test_effective_versus_billed(tmp_path: Path) -> None:
    rows = [
        row(ChargeCategory="Purchase", BilledCost="100", EffectiveCost="0"),
        row(BilledCost="0", EffectiveCost="4.5", start=D + timedelta(days=1)),
    ]
    source = FocusSource(write_csv(tmp_path / "e.csv", rows))
    assert by_scope(source, q())[()] == [100.0, 0.0, 0.0]
    assert by_scope(source, q(cost_basis=CostBasis.EFFECTIVE))[()] == [0.0, 4.5, 0.0]
    assert (
        source.fetch(q(cost_basis=CostBasis.EFFECTIVE)).series[0].cost_basis is CostBasis.EFFECTIVE
    )


def test_tag_dimension_filters_and_zero_fill(tmp_path: Path) -> None:
    rows = [
        row(BilledCost="1", Tags=json.dumps({"team": "ml", "cost:center": "r&d"})),
        row(
            BilledCost="2",
            ServiceName="S3",
            Tags=json.dumps({"team": "data"}),
            start=D + timedelta(days=2),
        ),
        row(BilledCost="4", ServiceName="S3", SubAccountId="222", Tags="{}"),
    ]
    source = FocusSource(write_csv(tmp_path / "t.csv", rows))
    assert by_scope(source, q(group_by=("tag:team", "service"))) == {
        ("", "S3"): [4.0, 0.0, 0.0],
        ("data", "S3"): [0.0, 0.0, 2.0],
        ("ml", "EC2"): [1.0, 0.0, 0.0],
    }
    assert by_scope(source, q(group_by=("tag:cost:center",)))[("r&d",)] == [1.0, 0.0, 0.0]
    only_s3 = q(group_by=("account",), filters={"service": ("S3",)})
    assert by_scope(source, only_s3) == {("111",): [0.0, 0.0, 2.0], ("222",): [4.0, 0.0, 0.0]}
    tagged = q(filters={"tag:team": ("ml", "data")})
    assert by_scope(source, tagged)[()] == [1.0, 0.0, 2.0]
    untagged = q(group_by=("service",), filters={"tag:team": ("",)})
    assert by_scope(source, untagged) == {("S3",): [4.0, 0.0, 0.0]}
    assert by_scope(source, q(filters={"service": ("Nope",)})) == {}


def test_buckets_hour_and_month_and_range(tmp_path: Path) -> None:
    rows = [row(start=D + timedelta(hours=h), BilledCost="1") for h in (0, 1, 1, 5)]
    rows.append(row(start=datetime(2024, 10, 3, tzinfo=UTC), BilledCost="7"))
    source = FocusSource(write_csv(tmp_path / "h.csv", rows))
    hourly = source.fetch(
        SpendQuery(start=D, end=D + timedelta(hours=6), granularity=Granularity.HOUR)
    )
    assert hourly.series[0].amounts.tolist() == [1.0, 2.0, 0.0, 0.0, 0.0, 1.0]
    monthly = source.fetch(
        SpendQuery(
            start=D + timedelta(days=3),
            end=datetime(2024, 11, 1, tzinfo=UTC),
            granularity=Granularity.MONTH,
        )
    )
    assert [s.isoformat() for s in monthly.series[0].starts] == [
        "2024-09-01T00:00:00+00:00",
        "2024-10-01T00:00:00+00:00",
    ]
    assert monthly.series[0].amounts.tolist() == [4.0, 7.0]
    assert source.time_range() == (D, datetime(2024, 10, 3, 1, tzinfo=UTC))


def test_complete_flags_follow_data_and_settle_time(tmp_path: Path) -> None:
    rows = [row(start=D + timedelta(hours=h)) for h in range(0, 24 + 6)]  # day 2 half filled
    path = write_csv(tmp_path / "p.csv", rows)
    now = D + timedelta(days=1, hours=6)
    series = FocusSource(path, now=now).fetch(q()).series[0]
    assert series.complete.tolist() == [True, False, False]
    assert series.completed().amounts.tolist() == [24.0]
    late = FocusSource(path, now=now, settle_hours=12).fetch(q()).series[0]
    assert late.complete.tolist() == [False, False, False]


def test_timestamps_naive_and_with_offset_are_utc(tmp_path: Path) -> None:
    rows = [
        row(ChargePeriodStart="2024-09-01 23:00:00", ChargePeriodEnd="2024-09-02 00:00:00"),
        row(
            ChargePeriodStart="2024-09-02T01:30:00+02:00",
            ChargePeriodEnd="2024-09-02T02:30:00+02:00",
        ),
    ]
    assert by_scope(FocusSource(write_csv(tmp_path / "z.csv", rows)), q())[()] == [2.0, 0.0, 0.0]


# -- bad input -----------------------------------------------------------------------------


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty"):
        FocusSource(empty).fetch(q())
    header = write_csv(tmp_path / "header.csv", [], list(row()))
    with pytest.raises(DataError, match=r"header\.csv: no charge rows"):
        FocusSource(header).fetch(q())


def test_bad_date_names_file_row_and_column(tmp_path: Path) -> None:
    rows = [row(), row(), row(ChargePeriodStart="2023-02-01T30:00:00Z")]
    path = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q())
    assert (err.value.file, err.value.row, err.value.field) == (str(path), 3, "ChargePeriodStart")
    assert "2023-02-01T30:00:00Z" in str(err.value) and "line 4" in str(err.value)


def test_us_style_date_is_refused_not_read_as_year_5(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "us.csv", [row(ChargePeriodEnd="5/1/25")])
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q())
    assert (
        err.value.row == 1 and err.value.field == "ChargePeriodEnd" and "'5/1/25'" in str(err.value)
    )


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "12,50", "abc"])
def test_non_finite_or_non_numeric_cost(tmp_path: Path, value: str) -> None:
    path = write_csv(tmp_path / "nan.csv", [row(), row(BilledCost=value)])
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q())
    assert (err.value.row, err.value.field) == (2, "BilledCost")
    assert "not a finite number" in str(err.value)
    # the effective basis does not read BilledCost, so the same file works for it
    assert by_scope(FocusSource(path), q(cost_basis=CostBasis.EFFECTIVE))[()][0] == 2.0


def test_nan_cost_in_parquet_names_the_row(tmp_path: Path) -> None:
    staged = write_csv(tmp_path / "s.csv", [row(), row(), row(BilledCost="NaN")])
    path = to_parquet(staged, tmp_path / "nan.parquet")
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q())
    assert (err.value.file, err.value.row, err.value.field) == (str(path), 3, "BilledCost")


def test_missing_mandatory_value(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [row(), row(BillingCurrency="NULL")])
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q())
    assert (err.value.row, err.value.field) == (2, "BillingCurrency")
    assert "requires a value" in str(err.value)


def test_invalid_tags_json_only_matters_when_tags_are_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tags.csv", [row(), row(Tags="team=ml")])
    assert by_scope(FocusSource(path), q())[()][0] == 2.0
    with pytest.raises(DataError) as err:
        FocusSource(path).fetch(q(group_by=("tag:team",)))
    assert (err.value.row, err.value.field) == (2, "Tags")


def test_mixed_currencies_name_the_scope(tmp_path: Path) -> None:
    rows = [
        row(),
        row(ServiceName="S3"),
        row(ServiceName="S3", BillingCurrency="EUR", SubAccountId="222"),
    ]
    source = FocusSource(write_csv(tmp_path / "cur.csv", rows))
    with pytest.raises(CurrencyMismatchError) as err:
        source.fetch(q(group_by=("service",)))
    assert "service=S3" in str(err.value) and "EUR and USD" in str(err.value)
    split = source.fetch(q(group_by=("service", "account")))
    assert {(s.key, s.currency) for s in split.series} == {
        ("service=EC2,sub_account=111", "USD"),
        ("service=S3,sub_account=111", "USD"),
        ("service=S3,sub_account=222", "EUR"),
    }
    with pytest.raises(CurrencyMismatchError, match="scope all"):
        source.fetch(q())


def test_query_end_before_start(tmp_path: Path) -> None:
    source = FocusSource(write_csv(tmp_path / "f.csv", [row()]))
    with pytest.raises(InputError, match="not after start"):
        source.fetch(SpendQuery(start=D, end=D))


def test_amounts_are_finite_numpy_arrays(tmp_path: Path) -> None:
    source = FocusSource(write_csv(tmp_path / "f.csv", [row(BilledCost="1e-12")]))
    series = source.fetch(q()).series[0]
    assert series.amounts.dtype == np.float64 and math.isclose(series.amounts[0], 1e-12)


# -- open_source ------------------------------------------------------------------------------


class _Config:
    def __init__(self, type: str, path: str | None = None, **settings: Any) -> None:
        self.name = "demo"
        self.type = type
        self.path = path
        self.settings = settings


def test_open_source_spec_string_and_config(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [row()])
    by_string = open_source(f"focus:{path}")
    assert isinstance(by_string, FocusSource) and by_scope(by_string, q())[()][0] == 1.0
    by_config = open_source(
        _Config("focus", str(path), version="1.2", settle_hours=6), settle_hours=24
    )
    assert isinstance(by_config, FocusSource)
    assert (by_config.name, by_config.version, by_config.settle_hours) == ("demo", "1.2", 6.0)
    assert open_source(_Config("focus", str(path)), settle_hours=24).settle_hours == 24.0


def test_open_source_errors() -> None:
    with pytest.raises(ConfigError, match="needs a path"):
        open_source("focus:")
    with pytest.raises(ConfigError, match=r"sources\[demo\]\.path"):
        open_source(_Config("focus"))
    with pytest.raises(ConfigError, match=r"settings\.colour: unknown setting"):
        open_source(_Config("focus", "x.csv", colour="red"))
    with pytest.raises(ProviderNotInstalledError, match="cloudcircuit-nosuchcloud"):
        open_source(_Config("nosuchcloud"))


@pytest.mark.parametrize(
    ("schema", "version"), [("focuscost_1.0r2", "1.0r2"), ("focuscost_1.2", "1.2")]
)
def test_azure_focus_export_headers_are_accepted(
    shared_data: Path, tmp_path: Path, schema: str, version: str
) -> None:
    # Azure Cost Management's real FOCUS export columns (finops-toolkit export schemas, MIT)
    spec = json.loads(
        (shared_data / "azure_finops_toolkit" / "export_schemas" / f"{schema}.json").read_text()
    )
    columns = [m["sink"]["name"] for m in spec["translator"]["mappings"]]
    assert any(c.startswith("x_") for c in columns)  # Azure adds its own x_ columns
    values = row(ServiceName="Virtual Machines", ProviderName="Microsoft")
    path = write_csv(tmp_path / "azure.csv", [{c: values.get(c, "") for c in columns}], columns)
    got = by_scope(FocusSource(path, version=version), q(group_by=("provider", "service")))
    assert got == {("Microsoft", "Virtual Machines"): [1.0, 0.0, 0.0]}


def test_progress_callback_sees_each_query(tmp_path: Path) -> None:
    seen: list[tuple[str, float | None]] = []
    source = FocusSource(
        write_csv(tmp_path / "f.csv", [row()]),
        progress=lambda label, done: seen.append((label, done)),
    )
    assert by_scope(source, q())[()][0] == 1.0
    labels = {label for label, _ in seen}
    assert "Checking 1 FOCUS file(s)" in labels and "Aggregating 1 FOCUS rows" in labels
    assert all(done is None or 0.0 <= done <= 1.0 for _, done in seen)
    assert seen[-1][1] == 1.0
    # errors raised inside the worker thread still arrive as cloudcircuit errors
    bad = FocusSource(
        write_csv(tmp_path / "bad.csv", [row(BilledCost="NaN")]), progress=lambda *_: None
    )
    with pytest.raises(DataError, match="not a finite number"):
        bad.fetch(q())


def test_profile_is_cached_until_a_file_changes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [row()])
    source = FocusSource(path)
    first = source.profile()
    assert source.profile() is first
    write_csv(path, [row(), row(BilledCost="2.5")])
    assert source.profile() is not first
    assert by_scope(source, q())[()][0] == 3.5


def test_parquet_files_with_different_column_types(tmp_path: Path) -> None:
    # one export wrote costs as DECIMAL and times as text, the next as DOUBLE and TIMESTAMPTZ
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    first = write_csv(tmp_path / "a.csv", [row(BilledCost="1.25")])
    rel = f"read_csv('{first}', all_varchar=true, nullstr=['NULL',''])"
    (tmp_path / "out").mkdir()
    con.execute(
        f"COPY (SELECT * REPLACE (CAST(BilledCost AS DECIMAL(18, 6)) AS BilledCost) FROM {rel}) "
        f"TO '{tmp_path / 'out' / 'a.parquet'}' (FORMAT parquet)"
    )
    second = write_csv(tmp_path / "b.csv", [row(BilledCost="2.5", start=D + timedelta(days=1))])
    to_parquet(second, tmp_path / "out" / "b.parquet")
    assert by_scope(FocusSource(tmp_path / "out"), q())[()] == [1.25, 2.5, 0.0]


def test_missing_duckdb_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudcircuit.sources.focus import load_duckdb

    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(ImportError, match=r"pip install 'cloudcircuit\[focus\]'"):
        load_duckdb()


def test_parquet_null_markers_fold_into_one_unset_group(tmp_path: Path) -> None:
    staged = write_csv(tmp_path / "s.csv", [row(BilledCost=str(2**i)) for i in range(4)])
    path = tmp_path / "markers.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CASE BilledCost WHEN '1' THEN '' WHEN '2' THEN 'NULL' "
        f"WHEN '4' THEN NULL ELSE 'us-east-1' END AS RegionId) "
        f"FROM read_csv('{staged}', all_varchar=true)) TO '{path}' (FORMAT parquet)"
    )
    regions = dict(
        con.execute(f"SELECT BilledCost, RegionId FROM read_parquet('{path}')").fetchall()
    )
    assert regions == {"1": "", "2": "NULL", "4": None, "8": "us-east-1"}
    source = FocusSource(path)
    assert by_scope(source, q(group_by=("region",))) == {
        ("",): [7.0, 0.0, 0.0],
        ("us-east-1",): [8.0, 0.0, 0.0],
    }
    assert by_scope(source, q(filters={"region": ("",)}))[()][0] == 7.0
    assert by_scope(source, q(filters={"region": ("", "us-east-1")}))[()][0] == 15.0


def test_open_source_with_the_policy_source_config(tmp_path: Path) -> None:
    from cloudcircuit.policy import SourceConfig

    path = write_csv(tmp_path / "f.csv", [row(BilledCost="3")])
    config = SourceConfig(name="exports", type="focus", path=str(path), settings={"strict": False})
    source = open_source(config, settle_hours=24)
    assert isinstance(source, FocusSource)
    assert (source.name, source.strict, source.settle_hours) == ("exports", False, 24.0)
    assert by_scope(source, q())[()][0] == 3.0


def test_provider_filter_ignores_case(shared_data: Path) -> None:
    """A policy written with `provider: [aws]` selects FOCUS rows whose ProviderName is AWS."""
    from datetime import UTC, datetime

    from cloudcircuit.providers import SpendQuery
    from cloudcircuit.sources.focus import FocusSource

    source = FocusSource(shared_data / "focus_sample_data_finops" / "focus_sample.csv")
    query = SpendQuery(
        start=datetime(2024, 9, 1, tzinfo=UTC),
        end=datetime(2024, 10, 1, tzinfo=UTC),
        group_by=("provider",),
        filters={"provider": ("aws",)},
    )
    series = source.fetch(query).series
    assert [s.scope["provider"] for s in series] == ["AWS"]
    assert series[0].total() == pytest.approx(18.00663861840, abs=1e-9)
