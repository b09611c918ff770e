"""FocusSource (SQL in DuckDB) agrees with spend.aggregate (plain Python) on random charges."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudcircuit.providers import SpendQuery
from cloudcircuit.sources.focus import FocusSource
from cloudcircuit.sources.focus_columns import mandatory_columns
from cloudcircuit.spend import CostBasis, Granularity, SpendRecord, aggregate

T0 = datetime(2024, 2, 27, tzinfo=UTC)  # spans a leap day and a month end

charge = st.fixed_dictionaries(
    {
        "hour": st.integers(0, 24 * 6 - 1),
        "billed": st.decimals(-50, 500, places=6, allow_nan=False, allow_infinity=False),
        "effective": st.decimals(-50, 500, places=6, allow_nan=False, allow_infinity=False),
        "service": st.sampled_from(["EC2", "S3", "Lambda"]),
        "account": st.sampled_from(["111", "222"]),
        "team": st.sampled_from([None, "ml", "data"]),
    }
)


def _write(path: Path, charges: list[dict[str, object]]) -> list[SpendRecord]:
    records = []
    columns = [*mandatory_columns("1.0"), "SubAccountId", "Tags"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, restval="x")
        w.writeheader()
        for c in charges:
            start = T0 + timedelta(hours=int(str(c["hour"])))
            tags = {} if c["team"] is None else {"team": str(c["team"])}
            w.writerow(
                {
                    "BilledCost": str(c["billed"]),
                    "EffectiveCost": str(c["effective"]),
                    "BillingCurrency": "USD",
                    "ChargePeriodStart": start.isoformat(),
                    "ChargePeriodEnd": (start + timedelta(hours=1)).isoformat(),
                    "BillingPeriodStart": "2024-02-01",
                    "BillingPeriodEnd": "2024-03-01",
                    "ProviderName": "AWS",
                    "ServiceName": c["service"],
                    "SubAccountId": c["account"],
                    "Tags": json.dumps(tags) if tags else "NULL",
                    "ChargeClass": "",
                }
            )
            records.append(
                SpendRecord(
                    charge_period_start=start,
                    charge_period_end=start + timedelta(hours=1),
                    billed_cost=float(Decimal(str(c["billed"]))),
                    effective_cost=float(Decimal(str(c["effective"]))),
                    billing_currency="USD",
                    provider_name="AWS",
                    sub_account_id=str(c["account"]),
                    service_name=str(c["service"]),
                    tags=tags,
                )
            )
    return records


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    charges=st.lists(charge, min_size=1, max_size=40),
    dims=st.sampled_from([(), ("service",), ("account", "tag:team"), ("tag:team", "service")]),
    granularity=st.sampled_from(list(Granularity)),
    basis=st.sampled_from(list(CostBasis)),
)
def test_focus_source_matches_python_aggregate(
    charges: list[dict[str, object]],
    dims: tuple[str, ...],
    granularity: Granularity,
    basis: CostBasis,
) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "charges.csv"
        records = _write(path, charges)
        start, end = T0, T0 + timedelta(days=6)
        got = FocusSource(path).fetch(
            SpendQuery(start, end, granularity=granularity, cost_basis=basis, group_by=dims)
        )
    want = aggregate(records, dims, granularity, cost_basis=basis, start=start, end=end)
    assert [s.key for s in got.series] == [s.key for s in want]
    for g, w in zip(got.series, want, strict=True):
        assert g.starts == w.starts
        # exact DECIMAL sums in DuckDB vs float sums in Python: equal to the float's precision
        assert all(abs(a - b) <= 1e-9 for a, b in zip(g.amounts, w.amounts, strict=True))
