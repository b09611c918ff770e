"""Cost Explorer as a :class:`~cloudcircuit.providers.SpendSource`, economical with requests.

GetCostAndUsage bills USD 0.01 per request and every page is a request, so this source:

- counts every request (``SourceStats.requests`` / ``api_cost_usd``) and refuses, with
  :class:`ApiBudgetExceededError`, to make the request that would pass the per-scan cap
  (``api_budget_usd``; a scan starts at construction or :meth:`begin_scan`);
- caches final buckets (``Estimated`` false and older than ``settle_hours``) in the state
  store, so a repeat scan asks only for the buckets that can still change;
- follows every ``NextPageToken``.

Parsing rules: ``TimePeriod.End`` is exclusive; amounts are decimal strings summed with
:class:`decimal.Decimal` (no float drift); grouped results carry an empty ``Total``; a tag
key ``team$`` (no value) is the untagged group and maps to ``""``, the core's untagged value.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from cloudcircuit.errors import (
    ApiBudgetExceededError,
    CurrencyMismatchError,
    DataError,
    InputError,
    SourceError,
    ThrottledError,
)
from cloudcircuit.providers import FetchResult, SourceStats, SpendQuery, StateStore
from cloudcircuit.spend import CostBasis, Granularity, SpendSeries, bucket_range, to_utc
from cloudcircuit_aws.clients import Clients, aws_error_code
from cloudcircuit_aws.orgs import AccountSet

__all__ = [
    "CE_PRICE_PER_REQUEST",
    "HOURLY_DAYS",
    "METRICS",
    "CostExplorerSource",
    "ce_filter",
    "ce_group_by",
    "parse_response",
]

CE_PRICE_PER_REQUEST = 0.01
METRICS = ("UnblendedCost", "NetUnblendedCost", "BlendedCost", "AmortizedCost", "NetAmortizedCost")
_DEFAULT_METRIC = {CostBasis.BILLED: "UnblendedCost", CostBasis.EFFECTIVE: "NetAmortizedCost"}
_GRANULARITY = {Granularity.HOUR: "HOURLY", Granularity.DAY: "DAILY", Granularity.MONTH: "MONTHLY"}
#: core dimension -> Cost Explorer dimension
_DIMENSION = {
    "service": "SERVICE",
    "sub_account": "LINKED_ACCOUNT",
    "account": "LINKED_ACCOUNT",
    "region": "REGION",
    "usage_type": "USAGE_TYPE",
}

_THROTTLED = ("LimitExceededException", "ThrottlingException", "TooManyRequestsException")
#: Cost Explorer keeps hourly data for the last 14 days only
HOURLY_DAYS = 14

Bucket = dict[tuple[str, ...], Decimal]


def ce_group_by(dimensions: Sequence[str]) -> list[dict[str, str]]:
    """Core group-by names -> CE GroupBy (at most two keys; ``provider`` is constant)."""
    out: list[dict[str, str]] = []
    for dim in dimensions:
        if dim == "provider":
            continue
        if dim.startswith("tag:"):
            out.append({"Type": "TAG", "Key": dim[4:]})
        elif dim.startswith("cost_category:"):
            out.append({"Type": "COST_CATEGORY", "Key": dim.split(":", 1)[1]})
        elif dim in _DIMENSION:
            out.append({"Type": "DIMENSION", "Key": _DIMENSION[dim]})
        else:
            raise InputError(
                f"group_by {dim!r}: Cost Explorer groups by service, sub_account, region, "
                "usage_type, tag:KEY or cost_category:NAME"
            )
    if len(out) > 2:
        raise InputError(f"group_by {list(dimensions)}: Cost Explorer allows at most two keys")
    return out


def ce_filter(filters: Mapping[str, Sequence[str]]) -> dict[str, Any] | None:
    """Core filters -> a CE Filter expression (``None`` when nothing is filtered).

    ``tag:KEY`` with the value ``""`` matches untagged resources (MatchOptions ABSENT).
    """
    parts: list[dict[str, Any]] = []
    for dim, values in filters.items():
        vals = [str(v) for v in values]
        if dim == "provider" or not vals:
            continue
        if dim.startswith("tag:") or dim.startswith("cost_category:"):
            kind = "Tags" if dim.startswith("tag:") else "CostCategories"
            key = dim.split(":", 1)[1]
            present = [v for v in vals if v != ""]
            options: list[dict[str, Any]] = []
            if present:
                options.append({kind: {"Key": key, "Values": present, "MatchOptions": ["EQUALS"]}})
            if len(present) != len(vals):
                options.append({kind: {"Key": key, "MatchOptions": ["ABSENT"]}})
            parts.append(options[0] if len(options) == 1 else {"Or": options})
        elif dim in _DIMENSION:
            parts.append(
                {"Dimensions": {"Key": _DIMENSION[dim], "Values": vals, "MatchOptions": ["EQUALS"]}}
            )
        else:
            raise InputError(f"filter {dim!r}: Cost Explorer cannot filter on it")
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"And": parts}


def _group_value(key: str, definition: Mapping[str, str]) -> str:
    """``team$ml`` -> ``ml``; ``team$`` (untagged) -> ``""``; dimension keys pass through."""
    if definition.get("Type") in ("TAG", "COST_CATEGORY"):
        _, sep, value = key.partition("$")
        return value if sep else key
    return key


def _decimal(text: Any, where: str) -> Decimal:
    try:
        value = Decimal(str(text))
    except InvalidOperation as exc:
        raise DataError(f"amount {text!r} is not a decimal number", field=where) from exc
    if not value.is_finite():
        raise DataError(f"amount {text!r} is not finite", field=where)
    return value


def _parse_start(text: str) -> datetime:
    if "T" in text:
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse_response(
    page: Mapping[str, Any],
    metric: str,
    group_by: Sequence[Mapping[str, str]],
    *,
    into: dict[datetime, Bucket] | None = None,
    estimated: set[datetime] | None = None,
    currencies: set[str] | None = None,
) -> dict[datetime, Bucket]:
    """Sum one GetCostAndUsage page into ``{bucket start: {group keys: Decimal}}``."""
    out = into if into is not None else {}
    for i, result in enumerate(page.get("ResultsByTime", [])):
        where = f"ResultsByTime[{i}]"
        try:
            start = _parse_start(result["TimePeriod"]["Start"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"bad TimePeriod: {exc}", field=f"{where}.TimePeriod") from exc
        bucket = out.setdefault(start, {})
        if result.get("Estimated") and estimated is not None:
            estimated.add(start)
        if group_by:
            for j, group in enumerate(result.get("Groups", [])):
                keys = group.get("Keys", [])
                values = tuple(_group_value(k, d) for k, d in zip(keys, group_by, strict=False))
                cell = group.get("Metrics", {}).get(metric)
                if cell is None:
                    raise DataError(
                        f"metric {metric} missing", field=f"{where}.Groups[{j}].Metrics"
                    )
                amount = _decimal(cell.get("Amount"), f"{where}.Groups[{j}].Amount")
                if currencies is not None and cell.get("Unit"):
                    currencies.add(str(cell["Unit"]))
                bucket[values] = bucket.get(values, Decimal(0)) + amount
        else:
            cell = result.get("Total", {}).get(metric)
            if cell is not None:
                amount = _decimal(cell.get("Amount"), f"{where}.Total.{metric}.Amount")
                if currencies is not None and cell.get("Unit"):
                    currencies.add(str(cell["Unit"]))
                bucket[()] = bucket.get((), Decimal(0)) + amount
    return out


@dataclass
class CostExplorerSource:
    """Spend from AWS Cost Explorer. See the module docstring for economy and parsing rules.

    ``metric`` overrides the cost-basis mapping (billed -> UnblendedCost, effective ->
    NetAmortizedCost) with any of :data:`METRICS`.
    """

    clients: Clients = field(default_factory=Clients)
    name: str = "aws"
    metric: str | None = None
    api_budget_usd: float = 1.0
    settle_hours: float = 24.0
    store: StateStore | None = None
    now: datetime | None = None
    #: member accounts read through an assumed role (organization-wide scans)
    accounts: AccountSet | None = None
    _scan_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.metric is not None and self.metric not in METRICS:
            raise InputError(f"metric {self.metric!r}: expected one of {', '.join(METRICS)}")
        if self.api_budget_usd < 0:
            raise InputError(f"api_budget_usd {self.api_budget_usd}: must be >= 0")

    def begin_scan(self) -> None:
        """Start a new scan: the API spend cap counts from here."""
        self._scan_requests = 0

    def bind_state(self, store: StateStore) -> None:
        """Use ``store`` to cache final buckets."""
        self.store = store

    @property
    def scan_requests(self) -> int:
        """Requests made since the scan began."""
        return self._scan_requests

    @property
    def scan_cost_usd(self) -> float:
        return round(self._scan_requests * CE_PRICE_PER_REQUEST, 2)

    def _metric(self, basis: CostBasis) -> str:
        return self.metric or _DEFAULT_METRIC[basis]

    def _cache_key(self, query: SpendQuery, metric: str, flt: Any, gb: Any) -> str:
        shape = json.dumps(
            [metric, _GRANULARITY[query.granularity], gb, flt], sort_keys=True, default=str
        )
        return "aws:ce:" + hashlib.sha256(shape.encode()).hexdigest()[:24]

    def _load_cache(self, key: str) -> dict[datetime, Bucket]:
        if self.store is None:
            return {}
        raw = self.store.get(key)
        if not isinstance(raw, dict):
            return {}
        out: dict[datetime, Bucket] = {}
        for start, rows in raw.get("buckets", {}).items():
            out[datetime.fromisoformat(start)] = {tuple(row[:-1]): Decimal(row[-1]) for row in rows}
        return out

    def _save_cache(self, key: str, cached: Mapping[datetime, Bucket]) -> None:
        if self.store is None:
            return
        payload = {
            "buckets": {
                start.isoformat(): [[*keys, str(amount)] for keys, amount in bucket.items()]
                for start, bucket in sorted(cached.items())
            }
        }
        self.store.set(key, payload)

    def _period(self, start: datetime, end: datetime, granularity: Granularity) -> dict[str, str]:
        if granularity is Granularity.HOUR:
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            return {"Start": start.strftime(fmt), "End": end.strftime(fmt)}
        return {"Start": start.strftime("%Y-%m-%d"), "End": end.strftime("%Y-%m-%d")}

    def _request(
        self, params: dict[str, Any], stats: SourceStats, clients: Clients
    ) -> dict[str, Any]:
        with self._lock:  # accounts are read in parallel: the cap is checked atomically
            if (self._scan_requests + 1) * CE_PRICE_PER_REQUEST > self.api_budget_usd + 1e-9:
                raise ApiBudgetExceededError(
                    f"Cost Explorer: request {self._scan_requests + 1} would cost "
                    f"USD {(self._scan_requests + 1) * CE_PRICE_PER_REQUEST:.2f} this scan, "
                    f"above api_budget_usd={self.api_budget_usd:g}; stopped before calling"
                )
            self._scan_requests += 1
        stats.requests += 1
        stats.api_cost_usd = round(stats.requests * CE_PRICE_PER_REQUEST, 2)
        try:
            answer: dict[str, Any] = clients.client("ce").get_cost_and_usage(**params)
        except Exception as exc:
            code = aws_error_code(exc)
            if code in _THROTTLED:
                raise ThrottledError(
                    f"Cost Explorer kept throttling ({code}) after "
                    f"{clients.max_attempts} adaptive-retry attempts"
                ) from exc
            raise SourceError(
                f"Cost Explorer GetCostAndUsage failed ({code or exc}): {exc}"
            ) from exc
        return answer

    def fetch(self, query: SpendQuery) -> FetchResult:
        """One series per group over ``[start, end)``, zero-filled, with complete flags.

        With ``accounts`` listing members (``role_name``), each account's Cost Explorer is read
        through its assumed role (``max_workers`` at a time) and same-scope series are summed;
        an account that fails is reported in ``stats.notes`` and the others still count. If
        every account fails, :class:`SourceError` lists them.
        """
        members = self.accounts.members() if self.accounts is not None else []
        if self.accounts is None or not members:
            return self._fetch_account(query, self.clients, "")
        accounts = self.accounts

        def one(clients: Clients) -> FetchResult:
            return self._fetch_account(query, clients, clients.account or "")

        results, errors = accounts.map(one)
        if errors and not results:
            raise SourceError("Cost Explorer failed in every account: " + "; ".join(errors))
        stats = SourceStats(source=self.name, notes=list(errors))
        merged: dict[str, SpendSeries] = {}
        for result in results:
            stats.requests += result.stats.requests
            stats.rows_read += result.stats.rows_read
            stats.cached_buckets += result.stats.cached_buckets
            fresh = result.stats.freshness
            if fresh is not None and (stats.freshness is None or fresh > stats.freshness):
                stats.freshness = fresh
            stats.notes.extend(result.stats.notes)
            for series in result.series:
                seen = merged.get(series.key)
                if seen is None:
                    merged[series.key] = series
                    continue
                if seen.currency != series.currency:
                    raise CurrencyMismatchError(
                        f"scope {series.key}: {seen.currency} in one account, "
                        f"{series.currency} in another"
                    )
                merged[series.key] = replace(
                    seen,
                    amounts=seen.amounts + series.amounts,
                    complete=seen.complete & series.complete,
                )
        stats.api_cost_usd = round(stats.requests * CE_PRICE_PER_REQUEST, 2)
        return FetchResult(series=list(merged.values()), stats=stats)

    def _fetch_account(self, query: SpendQuery, clients: Clients, account: str) -> FetchResult:
        stats = SourceStats(source=self.name)
        if "provider" in query.filters and "aws" not in query.filters["provider"]:
            stats.notes.append("provider filter excludes aws: nothing asked")
            return FetchResult(series=[], stats=stats)
        granularity = query.granularity
        metric = self._metric(query.cost_basis)
        group_by = ce_group_by(query.group_by)
        flt = ce_filter(query.filters)
        dims = tuple(d for d in query.group_by if d != "provider")
        now = to_utc(self.now or datetime.now(UTC))
        settled = now - timedelta(hours=self.settle_hours)
        if granularity is Granularity.HOUR and to_utc(query.start) < now - timedelta(
            days=HOURLY_DAYS
        ):
            raise InputError(
                f"hourly query from {to_utc(query.start).isoformat()}: Cost Explorer keeps hourly "
                f"data for the last {HOURLY_DAYS} days only; use granularity 'day' or a shorter "
                "lookback"
            )
        starts = bucket_range(query.start, query.end, granularity)
        if not starts:
            return FetchResult(series=[], stats=stats)
        key = self._cache_key(query, metric, flt, group_by) + (f":{account}" if account else "")
        cached = self._load_cache(key)
        first_open = next((i for i, s in enumerate(starts) if s not in cached), len(starts))
        fetched: dict[datetime, Bucket] = {}
        estimated: set[datetime] = set()
        currencies: set[str] = set()
        if first_open < len(starts):
            params: dict[str, Any] = {
                "TimePeriod": self._period(
                    starts[first_open], granularity.next(starts[-1]), granularity
                ),
                "Granularity": _GRANULARITY[granularity],
                "Metrics": [metric],
            }
            if group_by:
                params["GroupBy"] = group_by
            if flt is not None:
                params["Filter"] = flt
            while True:
                page = self._request(params, stats, clients)
                parse_response(
                    page,
                    metric,
                    group_by,
                    into=fetched,
                    estimated=estimated,
                    currencies=currencies,
                )
                token = page.get("NextPageToken")
                if not token:
                    break
                params = {**params, "NextPageToken": token}
        if len(currencies) > 1:
            raise CurrencyMismatchError(
                f"Cost Explorer answered in several currencies: {sorted(currencies)}",
                field=f"{metric}.Unit",
            )
        stats.cached_buckets = first_open
        buckets: dict[datetime, Bucket] = {s: cached[s] for s in starts[:first_open]}
        complete: dict[datetime, bool] = dict.fromkeys(starts[:first_open], True)
        newly_final: dict[datetime, Bucket] = {}
        for start in starts[first_open:]:
            bucket = fetched.get(start, {})
            buckets[start] = bucket
            final = start not in estimated and granularity.next(start) <= settled
            complete[start] = final
            if final:
                newly_final[start] = bucket
        if newly_final and self.store is not None:
            # keep the window only: buckets before the query's start are never asked again
            merged = {**cached, **newly_final}
            self._save_cache(key, {s: b for s, b in merged.items() if s >= starts[0]})
        stats.rows_read = sum(len(b) for b in fetched.values())
        seen = [s for s in starts if buckets[s]]
        if seen:
            stats.freshness = granularity.next(seen[-1])
        currency = next(iter(currencies), "USD")
        groups = sorted({g for b in buckets.values() for g in b})
        if not dims:
            groups = [()]
        series: list[SpendSeries] = []
        flags = np.array([complete[s] for s in starts], dtype=np.bool_)
        for group in groups:
            amounts = np.array(
                [float(buckets[s].get(group, Decimal(0))) for s in starts], dtype=np.float64
            )
            values = dict(zip(dims, group, strict=True))
            scope = {d: "aws" if d == "provider" else values[d] for d in query.group_by}
            series.append(
                SpendSeries(
                    scope=scope,
                    granularity=granularity,
                    starts=tuple(starts),
                    amounts=amounts,
                    complete=flags.copy(),
                    currency=currency,
                    cost_basis=query.cost_basis,
                )
            )
        return FetchResult(series=series, stats=stats)
