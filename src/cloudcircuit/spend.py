"""The spend model: FOCUS-aligned records, UTC-bucketed series, granularity and cost basis.

Every adapter maps its provider's rows onto :class:`SpendRecord` (field names are the FOCUS
column names in snake case, see :data:`FOCUS_COLUMNS`), or hands back :class:`SpendSeries`
directly when it aggregates server-side (FOCUS on DuckDB, Cost Explorer).

A series is one scope (``{"provider": "aws", "service": "Amazon EC2"}``), contiguous UTC
buckets, amounts in ONE currency, and a per-bucket ``complete`` flag: cost data arrives late,
so the newest buckets are usually still filling and guardrails must not read them as a drop.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from cloudcircuit.errors import CurrencyMismatchError, DataError, InputError

__all__ = [
    "DIMENSIONS",
    "FOCUS_COLUMNS",
    "CostBasis",
    "Granularity",
    "SpendRecord",
    "SpendSeries",
    "aggregate",
    "bucket_range",
    "dimension_value",
    "parse_dimensions",
    "scope_key",
    "to_utc",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Granularity(StrEnum):
    """UTC-aligned bucket size."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    def floor(self, when: datetime) -> datetime:
        """The start of the bucket holding ``when`` (UTC)."""
        when = to_utc(when)
        if self is Granularity.HOUR:
            return when.replace(minute=0, second=0, microsecond=0)
        if self is Granularity.DAY:
            return when.replace(hour=0, minute=0, second=0, microsecond=0)
        return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def next(self, start: datetime) -> datetime:
        """The start of the bucket after the one starting at ``start``."""
        if self is Granularity.HOUR:
            return start + timedelta(hours=1)
        if self is Granularity.DAY:
            return start + timedelta(days=1)
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)

    @property
    def seconds(self) -> float:
        """Nominal bucket length (a month counts as 30 days)."""
        return {"hour": 3600.0, "day": 86400.0, "month": 30 * 86400.0}[self.value]


class CostBasis(StrEnum):
    """Which cost a series carries: cash (FOCUS BilledCost) or amortized (EffectiveCost)."""

    BILLED = "billed"
    EFFECTIVE = "effective"


def to_utc(when: datetime) -> datetime:
    """Aware UTC datetime; a naive datetime is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def bucket_range(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """Bucket starts covering ``[start, end)`` (``start`` floored to the bucket)."""
    current = granularity.floor(start)
    end = to_utc(end)
    out: list[datetime] = []
    while current < end:
        out.append(current)
        current = granularity.next(current)
    return out


#: FOCUS column name -> SpendRecord field
FOCUS_COLUMNS: dict[str, str] = {
    "ChargePeriodStart": "charge_period_start",
    "ChargePeriodEnd": "charge_period_end",
    "BilledCost": "billed_cost",
    "EffectiveCost": "effective_cost",
    "BillingCurrency": "billing_currency",
    "ProviderName": "provider_name",
    "SubAccountId": "sub_account_id",
    "ServiceName": "service_name",
    "RegionId": "region_id",
    "ResourceId": "resource_id",
    "Tags": "tags",
}

#: dimension name (as used in ``--group-by`` and policy selectors) -> SpendRecord field.
#: ``tag:KEY`` selects a tag value; records without the tag group under ``""`` (untagged).
DIMENSIONS: dict[str, str] = {
    "provider": "provider_name",
    "sub_account": "sub_account_id",
    "account": "sub_account_id",
    "service": "service_name",
    "region": "region_id",
    "resource": "resource_id",
}


def parse_dimensions(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"provider,service,tag:team"`` -> validated, normalized dimension names."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in names:
        if not name:
            continue
        if name.startswith("tag:"):
            if len(name) == 4:
                raise InputError("group-by 'tag:' needs a tag key, e.g. tag:team")
            out.append(name)
        elif name in DIMENSIONS:
            out.append("sub_account" if name == "account" else name)
        else:
            known = ", ".join([*DIMENSIONS, "tag:KEY"])
            raise InputError(f"unknown dimension {name!r}; known: {known}")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One charge row, FOCUS-aligned. Times are aware UTC; ``end`` is exclusive."""

    charge_period_start: datetime
    charge_period_end: datetime
    billed_cost: float
    effective_cost: float
    billing_currency: str
    provider_name: str
    sub_account_id: str | None = None
    service_name: str | None = None
    region_id: str | None = None
    resource_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: False while the provider still revises this charge (Cost Explorer ``Estimated``)
    final: bool = True

    def cost(self, basis: CostBasis) -> float:
        return self.billed_cost if basis is CostBasis.BILLED else self.effective_cost


def dimension_value(record: SpendRecord, dimension: str) -> str:
    """The record's value for a dimension; missing values are ``""``."""
    if dimension.startswith("tag:"):
        return record.tags.get(dimension[4:], "")
    value = getattr(record, DIMENSIONS[dimension])
    return "" if value is None else str(value)


def scope_key(scope: Mapping[str, str]) -> str:
    """Stable text key of a scope: ``provider=aws,service=Amazon EC2``."""
    return ",".join(f"{k}={v}" for k, v in scope.items()) or "all"


@dataclass(frozen=True, eq=False)
class SpendSeries:
    """Spend of one scope over contiguous UTC buckets in one currency.

    ``amounts[i]`` is the spend in the bucket starting at ``starts[i]``; ``complete[i]`` is
    False while that bucket may still grow (late data, estimated charges, a half-filled day).
    """

    scope: Mapping[str, str]
    granularity: Granularity
    starts: tuple[datetime, ...]
    amounts: FloatArray
    complete: BoolArray
    currency: str
    cost_basis: CostBasis = CostBasis.BILLED

    def __post_init__(self) -> None:
        n = len(self.starts)
        if self.amounts.shape != (n,) or self.complete.shape != (n,):
            raise InputError(
                f"series {self.key}: {n} buckets but {self.amounts.shape[0]} amounts and "
                f"{self.complete.shape[0]} complete flags"
            )
        if n and not np.all(np.isfinite(self.amounts)):
            bad = int(np.flatnonzero(~np.isfinite(self.amounts))[0])
            raise DataError(
                f"series {self.key}: amount at {self.starts[bad].isoformat()} is "
                f"{self.amounts[bad]} (not a finite number)"
            )

    @property
    def key(self) -> str:
        return scope_key(self.scope)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def end(self) -> datetime | None:
        """Exclusive end of the last bucket."""
        return self.granularity.next(self.starts[-1]) if self.starts else None

    def completed(self) -> SpendSeries:
        """The leading run of complete buckets (what guardrails judge by default)."""
        n = len(self)
        last = n
        while last > 0 and not self.complete[last - 1]:
            last -= 1
        return self.slice(0, last)

    def slice(self, lo: int, hi: int) -> SpendSeries:
        return SpendSeries(
            scope=self.scope,
            granularity=self.granularity,
            starts=self.starts[lo:hi],
            amounts=self.amounts[lo:hi],
            complete=self.complete[lo:hi],
            currency=self.currency,
            cost_basis=self.cost_basis,
        )

    def total(self) -> float:
        return float(math.fsum(self.amounts.tolist()))

    def to_rows(self) -> list[dict[str, object]]:
        """One dict per bucket: date, the scope's dimensions, amount, currency, complete."""
        return [
            {
                "date": start.isoformat(),
                **self.scope,
                "amount": float(amount),
                "currency": self.currency,
                "complete": bool(done),
            }
            for start, amount, done in zip(self.starts, self.amounts, self.complete, strict=True)
        ]


def aggregate(
    records: Iterable[SpendRecord],
    dimensions: Sequence[str],
    granularity: Granularity,
    *,
    cost_basis: CostBasis = CostBasis.BILLED,
    start: datetime | None = None,
    end: datetime | None = None,
    complete_before: datetime | None = None,
    source: str | None = None,
) -> list[SpendSeries]:
    """Sum records into one series per combination of ``dimensions``.

    Every series spans the same buckets, ``[start, end)`` (default: first to last record);
    buckets with no rows are zero spend, not holes. A bucket is complete when every record in it
    is final and the bucket ends at or before ``complete_before`` (when given). Records are
    attributed to the bucket of their ``charge_period_start``.
    """
    dims = parse_dimensions(list(dimensions))
    sums: dict[tuple[str, ...], dict[datetime, float]] = defaultdict(lambda: defaultdict(float))
    currencies: dict[tuple[str, ...], str] = {}
    not_final: set[datetime] = set()
    first: datetime | None = None
    last: datetime | None = None
    for i, rec in enumerate(records):
        amount = rec.cost(cost_basis)
        if not math.isfinite(amount):
            raise DataError(f"cost is {amount}", file=source, row=i + 1, field="cost")
        bucket = granularity.floor(rec.charge_period_start)
        group = tuple(dimension_value(rec, d) for d in dims)
        seen = currencies.setdefault(group, rec.billing_currency)
        if seen != rec.billing_currency:
            scope = scope_key(dict(zip(dims, group, strict=True)))
            raise CurrencyMismatchError(
                f"two currencies in scope {scope}: {seen} and {rec.billing_currency}",
                file=source,
                row=i + 1,
                field="BillingCurrency",
            )
        sums[group][bucket] += amount
        if not rec.final:
            not_final.add(bucket)
        first = bucket if first is None or bucket < first else first
        last = bucket if last is None or bucket > last else last
    lo = granularity.floor(start) if start is not None else first
    hi = to_utc(end) if end is not None else (granularity.next(last) if last else None)
    if lo is None or hi is None:
        return []
    starts = tuple(bucket_range(lo, hi, granularity))
    index = {s: i for i, s in enumerate(starts)}
    cutoff = to_utc(complete_before) if complete_before is not None else None
    complete = np.array(
        [s not in not_final and (cutoff is None or granularity.next(s) <= cutoff) for s in starts],
        dtype=np.bool_,
    )
    out: list[SpendSeries] = []
    for group in sorted(sums):
        amounts = np.zeros(len(starts), dtype=np.float64)
        for bucket, value in sums[group].items():
            if bucket in index:
                amounts[index[bucket]] = value
        out.append(
            SpendSeries(
                scope=dict(zip(dims, group, strict=True)),
                granularity=granularity,
                starts=starts,
                amounts=amounts,
                complete=complete.copy(),
                currency=currencies[group],
                cost_basis=cost_basis,
            )
        )
    return out
