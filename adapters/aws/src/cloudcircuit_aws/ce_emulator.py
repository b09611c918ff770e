"""Seed moto's Cost Explorer with known spend, request by request.

moto answers GetCostAndUsage only from a queue filled through its ``moto-api`` endpoint
(``POST /moto-api/static/ce/cost-and-usage-results``), one result per distinct request body.
:class:`CostExplorerSeeder` hooks the client's ``provide-client-params`` event: before each
new request reaches moto it computes the answer from daily charge rows (filters, up to two
GroupBy keys, DAILY / MONTHLY / HOURLY, ``Estimated`` for unsettled buckets, pages of
``page_size`` buckets with NextPageToken) and queues exactly that result. Used by the demo,
the tests and the benchmark; it only ever talks to moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "MOTO_CE_QUEUE_URL",
    "Charge",
    "CostExplorerSeeder",
    "demo_charges",
    "queue_ce_results",
]

MOTO_CE_QUEUE_URL = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


@dataclass(frozen=True, slots=True)
class Charge:
    """Spend of one (account, service, region, tags) on one UTC day."""

    day: date
    account: str
    service: str
    amount: Decimal
    region: str = "us-east-1"
    tags: Mapping[str, str] = field(default_factory=dict)


def queue_ce_results(results: Sequence[Mapping[str, Any]], *, account: str | None = None) -> None:
    """Append results to moto's Cost Explorer queue (inside a moto mock) of ``account``
    (default: moto's account, ``MOTO_ACCOUNT_ID`` or 123456789012)."""
    import os

    import requests

    body: dict[str, Any] = {
        "account_id": account or os.environ.get("MOTO_ACCOUNT_ID", "123456789012"),
        "results": list(results),
    }
    answer = requests.post(MOTO_CE_QUEUE_URL, json=body, timeout=10)
    if answer.status_code != 201:
        raise RuntimeError(f"moto refused the Cost Explorer results: {answer.status_code}")


def demo_charges(now: datetime, *, days: int = 90) -> list[Charge]:
    """The demo scenario of INTERFACES.md as daily charges (deterministic, no noise).

    222222222222 EC2 tagged team=ml runs away (6x) from two days before today; 111111111111
    ECS grows slowly; S3 and small services are healthy. Today is partial (up to ``now``).
    """
    today = now.astimezone(UTC).date()
    runaway_from = today - timedelta(days=2)
    out: list[Charge] = []
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        weekend = day.weekday() >= 5
        share = Decimal(now.hour * 60 + now.minute) / Decimal(1440) if back == 0 else Decimal(1)

        ml = 180.0 * (0.6 if weekend else 1.0) * (6.0 if day >= runaway_from else 1.0)
        ecs = 820.0 * 1.012 ** (-back) * (0.85 if weekend else 1.0)
        rows: list[tuple[str, str, float, dict[str, str]]] = [
            ("222222222222", "Amazon Elastic Compute Cloud", ml, {"team": "ml", "env": "research"}),
            (
                "111111111111",
                "Amazon Elastic Container Service",
                ecs,
                {"team": "platform", "env": "prod"},
            ),
            (
                "111111111111",
                "Amazon Simple Storage Service",
                120.0 * (0.9 if weekend else 1.0),
                {"team": "data", "env": "prod"},
            ),
            ("111111111111", "AWS Lambda", 8.0, {"team": "platform"}),
            ("111111111111", "Amazon CloudWatch", 15.0, {"team": "platform"}),
            ("111111111111", "Amazon Relational Database Service", 60.0, {"team": "data"}),
        ]
        for account, service, value, tags in rows:
            amount = (Decimal(str(round(value, 4))) * share).quantize(Decimal("0.0001"))
            out.append(Charge(day, account, service, amount, tags=tags))
    return out


def _value(charge: Charge, kind: str, key: str) -> str | None:
    if kind in ("Tags", "TAG"):
        return charge.tags.get(key)
    if kind in ("CostCategories", "COST_CATEGORY"):
        return None
    return {
        "SERVICE": charge.service,
        "LINKED_ACCOUNT": charge.account,
        "REGION": charge.region,
        "USAGE_TYPE": "demo",
    }.get(key)


def _matches(charge: Charge, expr: Mapping[str, Any] | None) -> bool:
    if not expr:
        return True
    if "And" in expr:
        return all(_matches(charge, e) for e in expr["And"])
    if "Or" in expr:
        return any(_matches(charge, e) for e in expr["Or"])
    if "Not" in expr:
        return not _matches(charge, expr["Not"])
    for kind in ("Dimensions", "Tags", "CostCategories"):
        if kind in expr:
            spec = expr[kind]
            value = _value(charge, kind, spec["Key"])
            if "ABSENT" in spec.get("MatchOptions", []):
                return value is None
            return value is not None and value in spec.get("Values", [])
    raise ValueError(f"unsupported Cost Explorer filter {expr}")


def _group_key(charge: Charge, group: Mapping[str, str]) -> str:
    value = _value(charge, group["Type"], group["Key"])
    if group["Type"] in ("TAG", "COST_CATEGORY"):
        return f"{group['Key']}${value or ''}"
    return value or ""


def _parse(text: str) -> datetime:
    if "T" in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _buckets(start: datetime, end: datetime, granularity: str) -> list[tuple[datetime, datetime]]:
    out = []
    cur = start
    while cur < end:
        if granularity == "HOURLY":
            nxt = cur + timedelta(hours=1)
        elif granularity == "DAILY":
            nxt = cur + timedelta(days=1)
        else:
            nxt = (cur.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((cur, min(nxt, end)))
        cur = nxt
    return out


@dataclass
class CostExplorerSeeder:
    """Answers GetCostAndUsage requests from ``charges`` through moto's queue."""

    charges: Iterable[Charge]
    now: datetime
    page_size: int = 400
    estimated_hours: float = 24.0
    seen: set[str] = field(default_factory=set)
    requests: int = 0

    def result(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The GetCostAndUsage answer for ``params`` (one page)."""
        period = params["TimePeriod"]
        granularity = params["Granularity"]
        metric = params["Metrics"][0]
        group_by = params.get("GroupBy", [])
        start, end = _parse(period["Start"]), _parse(period["End"])
        buckets = _buckets(start, end, granularity)
        page = int(str(params.get("NextPageToken", "p0"))[1:])
        chosen = buckets[page * self.page_size : (page + 1) * self.page_size]
        rows = [c for c in self.charges if _matches(c, params.get("Filter"))]
        results = []
        for lo, hi in chosen:
            groups: dict[tuple[str, ...], Decimal] = {}
            for c in rows:
                day_start = datetime(c.day.year, c.day.month, c.day.day, tzinfo=UTC)
                day_end = day_start + timedelta(days=1)
                overlap = min(hi, day_end) - max(lo, day_start)
                if overlap <= timedelta(0):
                    continue
                part = c.amount * Decimal(overlap.total_seconds()) / Decimal(86400)
                key = tuple(_group_key(c, g) for g in group_by)
                groups[key] = groups.get(key, Decimal(0)) + part
            fmt = "%Y-%m-%dT%H:%M:%SZ" if granularity == "HOURLY" else "%Y-%m-%d"
            entry: dict[str, Any] = {
                "TimePeriod": {"Start": lo.strftime(fmt), "End": hi.strftime(fmt)},
                "Estimated": hi > self.now - timedelta(hours=self.estimated_hours),
            }
            if group_by:
                entry["Total"] = {}
                entry["Groups"] = [
                    {
                        "Keys": list(k),
                        "Metrics": {metric: {"Amount": f"{v:.10f}", "Unit": "USD"}},
                    }
                    for k, v in sorted(groups.items())
                ]
            else:
                total = sum(groups.values(), Decimal(0))
                entry["Total"] = {metric: {"Amount": f"{total:.10f}", "Unit": "USD"}}
                entry["Groups"] = []
            results.append(entry)
        answer: dict[str, Any] = {"ResultsByTime": results, "DimensionValueAttributes": []}
        if (page + 1) * self.page_size < len(buckets):
            answer["NextPageToken"] = f"p{page + 1}"
        if group_by:
            answer["GroupDefinitions"] = [dict(g) for g in group_by]
        return answer

    def _on_params(self, params: dict[str, Any], **_: Any) -> None:
        key = json.dumps(params, sort_keys=True, default=str)
        if key in self.seen:
            return
        self.seen.add(key)
        self.requests += 1
        queue_ce_results([self.result(params)])

    def attach(self, ce_client: Any) -> None:
        """Queue the right result before each new request ``ce_client`` sends to moto."""
        ce_client.meta.events.register("provide-client-params.ce.GetCostAndUsage", self._on_params)

    def attach_to_new_clients(self) -> Callable[[], None]:
        """Attach to every Cost Explorer client :mod:`.clients` builds from now on."""
        from cloudcircuit_aws.clients import observe_clients

        def watch(service: str, client: Any) -> None:
            if service == "ce":
                self.attach(client)

        return observe_clients(watch)
