"""A realistic FOCUS 1.2 data set for ``make demo``, tests and screenshots.

The scenario is fixed (examples/policy.yaml and the AWS moto demo are written against it):
two AWS accounts, hourly charge rows, weekly seasonality (weekends cost less), a little noise,

- 222222222222 (ml-research), Amazon Elastic Compute Cloud, team=ml: about 180 USD a weekday,
  weekends x0.6, and since two days ago a forgotten GPU training cluster makes it 6x;
- 111111111111 (prod), Amazon Elastic Container Service, team=platform: slowly rising,
  ``820 * 1.012 ** -days_ago`` a day (weekends x0.85), on course to breach its monthly budget;
- 111111111111, Amazon Simple Storage Service, team=data: healthy, about 120 a day;
- 111111111111 noise: AWS Lambda (~8), Amazon CloudWatch (~15), Amazon RDS (~60 a day).

Rows run up to ``now`` (whole hours only), so today's bucket is partial. The same ``seed`` and
``now`` give byte-identical CSV and the same Parquet rows. One file per billing month, as the
providers' exports do.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from cloudcircuit.errors import InputError
from cloudcircuit.sources.focus_columns import columns_of
from cloudcircuit.spend import Granularity, to_utc

__all__ = ["DEMO_FILE_PREFIX", "DemoService", "demo_services", "generate_demo_dataset"]

DEMO_FILE_PREFIX = "focus-demo-"
_BILLING_ACCOUNT = ("999999999999", "cloudcircuit-demo-org")
_ACCOUNTS = {"111111111111": "prod", "222222222222": "ml-research"}
_REGION_NAMES = {"us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)"}
_DECIMAL_COLUMNS = {
    "BilledCost",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "ConsumedQuantity",
}
_TIME_COLUMNS = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}


@dataclass(frozen=True, slots=True)
class _Resource:
    """One billed resource: id, name, type, SKU, unit price, and its share of the service."""

    resource_id: str
    name: str
    resource_type: str
    sku: str
    usage_type: str
    unit: str
    unit_price: float
    share: float
    #: cluster that only runs during the runaway
    runaway_only: bool = False


@dataclass(frozen=True, slots=True)
class DemoService:
    """One (account, service) line of the scenario and how its daily cost behaves."""

    account: str
    service: str
    category: str
    subcategory: str
    region: str
    tags: dict[str, str]
    daily: float
    weekend: float
    noise: float
    resources: tuple[_Resource, ...] = field(default_factory=tuple)
    growth: float = 1.0

    def base_cost(self, days_ago: int, weekend: bool) -> float:
        """Expected cost of a normal day ``days_ago`` days before today (no noise)."""
        return self.daily * self.growth ** (-days_ago) * (self.weekend if weekend else 1.0)

    def active(self, days_ago: int) -> tuple[_Resource, ...]:
        """Resources billing on that day: the runaway cluster only since two days ago."""
        return tuple(r for r in self.resources if not r.runaway_only or days_ago <= 2)

    def expected_cost(self, days_ago: int, weekend: bool) -> float:
        """Expected cost of a whole day, runaway included (no noise)."""
        return self.base_cost(days_ago, weekend) * sum(r.share for r in self.active(days_ago))


def _arn(service: str, region: str, account: str, rest: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{rest}"


def demo_services() -> list[DemoService]:
    """The scenario's services, resources and cost curves."""
    ml, prod = "222222222222", "111111111111"
    return [
        DemoService(
            account=ml,
            service="Amazon Elastic Compute Cloud",
            category="Compute",
            subcategory="Virtual Machines",
            region="us-west-2",
            tags={"team": "ml", "env": "research"},
            daily=180.0,
            weekend=0.6,
            noise=0.04,
            resources=(
                _Resource(
                    _arn("ec2", "us-west-2", ml, "instance/i-0a4f1c9e7b2d35e10"),
                    "research-notebook-1",
                    "Instance",
                    "8QZKXW3F7HM2V5TA",
                    "USW2-BoxUsage:g5.2xlarge",
                    "Hours",
                    1.212,
                    0.5,
                ),
                _Resource(
                    _arn("ec2", "us-west-2", ml, "instance/i-0c7e2b5d9f1a84c63"),
                    "research-notebook-2",
                    "Instance",
                    "8QZKXW3F7HM2V5TA",
                    "USW2-BoxUsage:g5.2xlarge",
                    "Hours",
                    1.212,
                    0.3,
                ),
                _Resource(
                    _arn("ec2", "us-west-2", ml, "volume/vol-0e91d3a6c4b27f508"),
                    "research-data",
                    "Volume",
                    "HY3BZPP2B6K8MSJF",
                    "USW2-EBS:VolumeUsage.gp3",
                    "GB-Mo",
                    0.08 / 730,
                    0.2,
                ),
                # the forgotten training cluster: 5x the base spend, since two days ago
                *(
                    _Resource(
                        _arn("ec2", "us-west-2", ml, f"instance/{iid}"),
                        f"ml-training-cluster-{n}",
                        "Instance",
                        "Z7XPGA2HV9N4CDQE",
                        "USW2-BoxUsage:p4d.24xlarge",
                        "Hours",
                        32.7726,
                        5.0 / 3,
                        runaway_only=True,
                    )
                    for n, iid in enumerate(
                        ("i-07d2a9c4e1f6b3850", "i-0f3b8e6a2c9d71d42", "i-0b5c1f7e3a8d62e97"),
                        start=1,
                    )
                ),
            ),
        ),
        DemoService(
            account=prod,
            service="Amazon Elastic Container Service",
            category="Compute",
            subcategory="Containers",
            region="us-east-1",
            tags={"team": "platform", "env": "prod"},
            daily=820.0,
            weekend=0.85,
            noise=0.01,
            growth=1.012,
            resources=tuple(
                _Resource(
                    _arn("ecs", "us-east-1", prod, f"service/prod-cluster/{svc}"),
                    svc,
                    "Service",
                    "J6HW4TRXQ2B8DKNA",
                    "USE1-Fargate-vCPU-Hours:perCPU",
                    "Hours",
                    0.04048,
                    share,
                )
                for svc, share in (
                    ("checkout-api", 0.45),
                    ("search-api", 0.35),
                    ("notifications", 0.2),
                )
            ),
        ),
        DemoService(
            account=prod,
            service="Amazon Simple Storage Service",
            category="Storage",
            subcategory="Object Storage",
            region="us-east-1",
            tags={"team": "data", "env": "prod"},
            daily=120.0,
            weekend=0.9,
            noise=0.03,
            resources=(
                _Resource(
                    "arn:aws:s3:::prod-data-lake-111111111111",
                    "prod-data-lake-111111111111",
                    "Bucket",
                    "WP9ANXZGBYYSGJEA",
                    "TimedStorage-ByteHrs",
                    "GB-Mo",
                    0.023 / 730,
                    0.75,
                ),
                _Resource(
                    "arn:aws:s3:::prod-backups-111111111111",
                    "prod-backups-111111111111",
                    "Bucket",
                    "WP9ANXZGBYYSGJEA",
                    "TimedStorage-ByteHrs",
                    "GB-Mo",
                    0.023 / 730,
                    0.25,
                ),
            ),
        ),
        DemoService(
            account=prod,
            service="AWS Lambda",
            category="Compute",
            subcategory="Serverless Compute",
            region="us-east-1",
            tags={"team": "platform", "env": "prod"},
            daily=8.0,
            weekend=0.9,
            noise=0.08,
            resources=(
                _Resource(
                    _arn("lambda", "us-east-1", prod, "function:order-events"),
                    "order-events",
                    "Function",
                    "TG3M4CAGBA3NYQBH",
                    "USE1-Lambda-GB-Second",
                    "GB-Seconds",
                    0.0000166667,
                    1.0,
                ),
            ),
        ),
        DemoService(
            account=prod,
            service="Amazon CloudWatch",
            category="Management and Governance",
            subcategory="Observability",
            region="us-east-1",
            tags={"team": "platform", "env": "prod"},
            daily=15.0,
            weekend=1.0,
            noise=0.05,
            resources=(
                _Resource(
                    _arn("logs", "us-east-1", prod, "log-group:/ecs/prod-cluster"),
                    "/ecs/prod-cluster",
                    "Log Group",
                    "RPWAEBAFBVSVNAFA",
                    "USE1-DataProcessing-Bytes",
                    "GB",
                    0.5,
                    1.0,
                ),
            ),
        ),
        DemoService(
            account=prod,
            service="Amazon Relational Database Service",
            category="Databases",
            subcategory="Relational Databases",
            region="us-east-1",
            tags={"team": "data", "env": "prod"},
            daily=60.0,
            weekend=1.0,
            noise=0.02,
            resources=(
                _Resource(
                    _arn("rds", "us-east-1", prod, "db:prod-orders"),
                    "prod-orders",
                    "DB Instance",
                    "QGK6V8M5ZRYCJ7EP",
                    "USE1-InstanceUsage:db.r6g.large",
                    "Hours",
                    0.225,
                    1.0,
                ),
            ),
        ),
    ]


def _month_start(when: datetime) -> datetime:
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def _static_fields(svc: DemoService, res: _Resource) -> dict[str, str]:
    """The columns of a resource's rows that do not change from hour to hour."""
    billing_id, billing_name = _BILLING_ACCOUNT
    price = _num(res.unit_price)
    return {
        "AvailabilityZone": f"{svc.region}a" if res.unit == "Hours" else "",
        "BillingAccountId": billing_id,
        "BillingAccountName": billing_name,
        "BillingAccountType": "Billing Account",
        "BillingCurrency": "USD",
        "ChargeCategory": "Usage",
        "ChargeDescription": (
            f"${res.unit_price:.6g} per {res.unit} for {res.usage_type} "
            f"in {_REGION_NAMES[svc.region]}"
        ),
        "ChargeFrequency": "Usage-Based",
        "ConsumedUnit": res.unit,
        "ContractedUnitPrice": price,
        "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "ListUnitPrice": price,
        "PricingCategory": "Standard",
        "PricingCurrency": "USD",
        "PricingCurrencyContractedUnitPrice": price,
        "PricingCurrencyListUnitPrice": price,
        "PricingUnit": res.unit,
        "ProviderName": "AWS",
        "PublisherName": "Amazon Web Services, Inc.",
        "RegionId": svc.region,
        "RegionName": _REGION_NAMES[svc.region],
        "ResourceId": res.resource_id,
        "ResourceName": res.name,
        "ResourceType": res.resource_type,
        "ServiceCategory": svc.category,
        "ServiceName": svc.service,
        "ServiceSubcategory": svc.subcategory,
        "SkuId": res.sku,
        "SkuMeter": res.usage_type,
        "SkuPriceDetails": json.dumps({"UsageType": res.usage_type}),
        "SkuPriceId": f"{res.sku}.JRTCKXETXF.6YS6EN2CT7",
        "SubAccountId": svc.account,
        "SubAccountName": _ACCOUNTS[svc.account],
        "SubAccountType": "AWS Account",
        "Tags": json.dumps(svc.tags, sort_keys=True),
    }


def _rows(now: datetime, days: int, seed: int) -> Iterator[dict[str, str]]:
    """Every charge row of the scenario, service by service and hour by hour."""
    rng = np.random.default_rng(seed)
    today = Granularity.DAY.floor(now)
    first = today - timedelta(days=days)
    hours = int((Granularity.HOUR.floor(now) - first).total_seconds() // 3600)
    # the time columns of each hour, computed once for all services
    times: list[tuple[int, bool, dict[str, str]]] = []
    for h in range(hours):
        start = first + timedelta(hours=h)
        period = _month_start(start)
        times.append(
            (
                (today - Granularity.DAY.floor(start)).days,
                start.weekday() >= 5,
                {
                    "BillingPeriodEnd": _iso(Granularity.MONTH.next(period)),
                    "BillingPeriodStart": _iso(period),
                    "ChargePeriodEnd": _iso(start + timedelta(hours=1)),
                    "ChargePeriodStart": _iso(start),
                },
            )
        )
    for svc in demo_services():
        day_noise = rng.normal(0.0, svc.noise, size=days + 1)
        hour_noise = rng.normal(0.0, svc.noise / 2, size=(hours, len(svc.resources)))
        statics = [_static_fields(svc, res) for res in svc.resources]
        for h, (days_ago, weekend, when) in enumerate(times):
            base = svc.base_cost(days_ago, weekend) / 24.0
            factor = max(0.5, 1.0 + day_noise[days - days_ago])
            for r, res in enumerate(svc.resources):
                if res.runaway_only and days_ago > 2:
                    continue
                cost = round(base * res.share * factor * max(0.5, 1.0 + hour_noise[h, r]), 10)
                amount = _num(cost)
                quantity = _num(round(cost / res.unit_price, 10))
                yield {
                    **statics[r],
                    **when,
                    "BilledCost": amount,
                    "ConsumedQuantity": quantity,
                    "ContractedCost": amount,
                    "EffectiveCost": amount,
                    "ListCost": amount,
                    "PricingCurrencyEffectiveCost": amount,
                    "PricingQuantity": quantity,
                }


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """CSV in a temporary folder, then DuckDB COPY with FOCUS types (decimals as DOUBLE,
    times as TIMESTAMP WITH TIME ZONE, the rest as text)."""
    from cloudcircuit.sources.focus import load_duckdb

    duckdb = load_duckdb()
    with tempfile.TemporaryDirectory(prefix="cloudcircuit-demo-") as tmp:
        staging = Path(tmp) / "rows.csv"
        _write_csv(staging, columns, rows)
        casts = []
        for name in columns:
            quoted = f'"{name}"'
            if name in _DECIMAL_COLUMNS:
                casts.append(f"CAST({quoted} AS DOUBLE) AS {quoted}")
            elif name in _TIME_COLUMNS:
                casts.append(f"CAST({quoted} AS TIMESTAMPTZ) AS {quoted}")
            else:
                casts.append(quoted)
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            source = str(staging).replace("'", "''")
            target = str(path).replace("'", "''")
            con.execute(
                f"COPY (SELECT {', '.join(casts)} FROM read_csv('{source}', header = true, "
                f"all_varchar = true, nullstr = '')) TO '{target}' "
                f"(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            con.close()


def generate_demo_dataset(
    out_dir: Path,
    *,
    now: datetime | None = None,
    days: int = 90,
    seed: int = 7,
    fmt: Literal["parquet", "csv"] = "parquet",
) -> Path:
    """Write the demo scenario as FOCUS 1.2 files (one per billing month) into ``out_dir``.

    ``days`` whole days of history end at the start of today (UTC); today runs up to the last
    whole hour before ``now`` (default: the current time). Earlier demo files in ``out_dir``
    are replaced, so a FocusSource on the folder never double counts. Returns ``out_dir``.
    """
    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    if fmt not in ("parquet", "csv"):
        raise InputError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    now = to_utc(now) if now is not None else datetime.now(UTC)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{DEMO_FILE_PREFIX}*"):
        if old.is_file() and old.suffix in (".csv", ".parquet"):
            old.unlink()
    columns = list(columns_of("1.2"))
    by_month: dict[str, list[dict[str, str]]] = {}
    for row in _rows(now, days, seed):
        by_month.setdefault(row["BillingPeriodStart"][:7], []).append(row)
    for month, rows in sorted(by_month.items()):
        target = out_dir / f"{DEMO_FILE_PREFIX}{month}.{fmt}"
        if fmt == "csv":
            _write_csv(target, columns, rows)
        else:
            _write_parquet(target, columns, rows)
    return out_dir
