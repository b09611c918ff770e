"""The spend model: buckets, aggregation by dimensions, zero-filled days, currency checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcircuit.errors import CurrencyMismatchError, DataError, InputError
from cloudcircuit.spend import (
    CostBasis,
    Granularity,
    SpendRecord,
    SpendSeries,
    aggregate,
    bucket_range,
    parse_dimensions,
    scope_key,
    to_utc,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rec(hours: float, cost: float, **kw: object) -> SpendRecord:
    start = T0 + timedelta(hours=hours)
    fields: dict[str, object] = {
        "charge_period_start": start,
        "charge_period_end": start + timedelta(hours=1),
        "billed_cost": cost,
        "effective_cost": cost * 0.5,
        "billing_currency": "USD",
        "provider_name": "AWS",
        "service_name": "Amazon EC2",
    }
    fields.update(kw)
    return SpendRecord(**fields)  # type: ignore[arg-type]


def test_granularity_floor_and_next() -> None:
    t = datetime(2026, 2, 14, 13, 45, 12, tzinfo=UTC)
    assert Granularity.HOUR.floor(t) == datetime(2026, 2, 14, 13, tzinfo=UTC)
    assert Granularity.DAY.floor(t) == datetime(2026, 2, 14, tzinfo=UTC)
    assert Granularity.MONTH.floor(t) == datetime(2026, 2, 1, tzinfo=UTC)
    assert Granularity.MONTH.next(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 2, 1, tzinfo=UTC
    )
    assert Granularity.MONTH.next(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert Granularity.DAY.next(datetime(2026, 2, 28, tzinfo=UTC)) == datetime(
        2026, 3, 1, tzinfo=UTC
    )


def test_floor_converts_other_zones_to_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 1, 1, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 00:30 UTC
    assert Granularity.DAY.floor(local) == datetime(2026, 3, 1, tzinfo=UTC)
    assert to_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_bucket_range_is_half_open() -> None:
    days = bucket_range(T0, T0 + timedelta(days=3), Granularity.DAY)
    assert days == [T0 + timedelta(days=i) for i in range(3)]
    assert bucket_range(T0, T0, Granularity.DAY) == []


def test_parse_dimensions() -> None:
    assert parse_dimensions("provider, service,tag:team") == ("provider", "service", "tag:team")
    assert parse_dimensions(["account"]) == ("sub_account",)
    with pytest.raises(InputError, match="unknown dimension 'servce'"):
        parse_dimensions("servce")
    with pytest.raises(InputError, match="tag key"):
        parse_dimensions("tag:")


def test_aggregate_groups_and_zero_fills_missing_days() -> None:
    records = [
        rec(0, 1.0),
        rec(1, 2.0),
        rec(48, 4.0),  # day 3; day 2 has no rows
        rec(2, 10.0, service_name="Amazon S3"),
    ]
    series = aggregate(records, ["service"], Granularity.DAY)
    by_service = {s.scope["service"]: s for s in series}
    assert set(by_service) == {"Amazon EC2", "Amazon S3"}
    ec2 = by_service["Amazon EC2"]
    assert ec2.starts == (T0, T0 + timedelta(days=1), T0 + timedelta(days=2))
    np.testing.assert_array_equal(ec2.amounts, [3.0, 0.0, 4.0])
    np.testing.assert_array_equal(by_service["Amazon S3"].amounts, [10.0, 0.0, 0.0])
    assert ec2.currency == "USD"
    assert ec2.complete.all()


def test_aggregate_by_cost_basis_and_tag() -> None:
    records = [
        rec(0, 2.0, tags={"team": "ml"}),
        rec(1, 4.0, tags={"team": "web"}),
        rec(2, 8.0),
    ]
    series = aggregate(records, ["tag:team"], Granularity.DAY, cost_basis=CostBasis.EFFECTIVE)
    totals = {s.scope["tag:team"]: s.total() for s in series}
    assert totals == {"": 4.0, "ml": 1.0, "web": 2.0}
    assert all(s.cost_basis is CostBasis.EFFECTIVE for s in series)


def test_credits_stay_negative() -> None:
    series = aggregate([rec(0, 5.0), rec(1, -2.5)], [], Granularity.DAY)
    assert series[0].total() == 2.5
    assert series[0].scope == {}
    assert series[0].key == "all"


def test_mixed_currency_names_the_scope() -> None:
    records = [rec(0, 1.0), rec(1, 1.0, billing_currency="EUR")]
    with pytest.raises(CurrencyMismatchError, match=r"service=Amazon EC2.*USD and EUR"):
        aggregate(records, ["service"], Granularity.DAY, source="bill.csv")


def test_two_currencies_in_different_scopes_are_fine() -> None:
    records = [rec(0, 1.0), rec(1, 1.0, billing_currency="EUR", service_name="X")]
    series = aggregate(records, ["service"], Granularity.DAY)
    assert {s.currency for s in series} == {"USD", "EUR"}


def test_nan_cost_is_an_error_naming_the_row() -> None:
    with pytest.raises(DataError, match="row 2"):
        aggregate([rec(0, 1.0), rec(1, float("nan"))], [], Granularity.DAY, source="x.csv")


def test_complete_flags_from_cutoff_and_estimates() -> None:
    records = [rec(0, 1.0), rec(24, 1.0), rec(48, 1.0, final=False)]
    series = aggregate(
        records, [], Granularity.DAY, complete_before=T0 + timedelta(days=1, hours=12)
    )[0]
    assert series.complete.tolist() == [True, False, False]
    assert len(series.completed()) == 1
    estimated = aggregate(records, [], Granularity.DAY)[0]
    assert estimated.complete.tolist() == [True, True, False]


def test_explicit_range_pads_both_ends() -> None:
    series = aggregate(
        [rec(30, 2.0)],
        [],
        Granularity.DAY,
        start=T0,
        end=T0 + timedelta(days=4),
    )[0]
    np.testing.assert_array_equal(series.amounts, [0.0, 2.0, 0.0, 0.0])
    assert series.end == T0 + timedelta(days=4)


def test_series_validates_shapes_and_finiteness() -> None:
    with pytest.raises(InputError, match="2 buckets but 1 amounts"):
        SpendSeries(
            scope={"service": "x"},
            granularity=Granularity.DAY,
            starts=(T0, T0 + timedelta(days=1)),
            amounts=np.array([1.0]),
            complete=np.array([True, True]),
            currency="USD",
        )
    with pytest.raises(DataError, match="not a finite number"):
        SpendSeries(
            scope={},
            granularity=Granularity.DAY,
            starts=(T0,),
            amounts=np.array([np.inf]),
            complete=np.array([True]),
            currency="USD",
        )


def test_to_rows() -> None:
    series = aggregate([rec(0, 1.5)], ["provider"], Granularity.DAY)[0]
    assert series.to_rows() == [
        {
            "date": "2026-11-01T00:00:00+00:00",
            "provider": "AWS",
            "amount": 1.5,
            "currency": "USD",
            "complete": True,
        }
    ]
    assert scope_key({"provider": "AWS", "service": "S3"}) == "provider=AWS,service=S3"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=24 * 40),
            st.floats(min_value=-100, max_value=1000, allow_nan=False),
            st.sampled_from(["a", "b", "c"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(list(Granularity)),
)
def test_aggregation_conserves_spend(rows: list[tuple[int, float, str]], g: Granularity) -> None:
    records = [rec(h, c, service_name=s) for h, c, s in rows]
    series = aggregate(records, ["service"], g)
    total = sum(s.total() for s in series)
    assert total == pytest.approx(sum(c for _, c, _ in rows), abs=1e-6)
    lengths = {len(s) for s in series}
    assert len(lengths) == 1  # every group spans the same buckets
    for s in series:
        assert all(g.next(a) == b for a, b in zip(s.starts, s.starts[1:], strict=False))
