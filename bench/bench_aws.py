"""AWS adapter economy, in moto:

1. Cost Explorer requests and their cost (USD 0.01 each) for a 90-day daily scan grouped by
   service: first run, repeat run with the bucket cache, repeat run without it;
2. N EC2 instances (5,000; --quick 500) tagged then stopped through the real enforcement path
   (plan, journal, batch apply): API calls made vs the batching minimum, wall time;
3. the Lambda zip (``make lambda-zip``): size and the handler's cold import time.

``python -m bench.bench_aws [--quick]``; JSON in bench/results/aws.json.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
console = Console()


def _ce(page_size: int) -> dict[str, Any]:
    from cloudcircuit_aws.ce_emulator import CostExplorerSeeder, demo_charges
    from cloudcircuit_aws.clients import Clients
    from cloudcircuit_aws.costs import CostExplorerSource
    from cloudcircuit_aws.demo import moto_aws

    from cloudcircuit.providers import SpendQuery
    from cloudcircuit.state import MemoryStore

    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    end = datetime(2026, 11, 24, tzinfo=UTC)
    query = SpendQuery(start=end - timedelta(days=90), end=end, group_by=("service",))
    out: dict[str, Any] = {"page_size_buckets": page_size}
    with moto_aws():
        seeder = CostExplorerSeeder(demo_charges(now, days=100), now=now, page_size=page_size)
        stop = seeder.attach_to_new_clients()
        try:
            store = MemoryStore()
            cached = CostExplorerSource(clients=Clients(), now=now, store=store)
            first = cached.fetch(query).stats
            cached.begin_scan()
            repeat = cached.fetch(query).stats
            plain = CostExplorerSource(clients=Clients(), now=now)
            plain.fetch(query)
            plain.begin_scan()
            uncached = plain.fetch(query).stats
        finally:
            stop()
    for name, stats in (("first", first), ("repeat_cached", repeat), ("repeat_uncached", uncached)):
        out[name] = {
            "requests": stats.requests,
            "cost_usd": stats.api_cost_usd,
            "cached_buckets": stats.cached_buckets,
        }
    return out


def _ec2(n: int) -> dict[str, Any]:
    import boto3
    from cloudcircuit_aws.actions import TAG_BATCH_EC2, AwsEnforcer
    from cloudcircuit_aws.clients import Clients
    from cloudcircuit_aws.demo import moto_aws
    from cloudcircuit_aws.orgs import AccountSet
    from cloudcircuit_aws.resources import EC2_BATCH

    from cloudcircuit.decision import Decision
    from cloudcircuit.enforcement import Limits, ManualAction, build_plan, execute_plan
    from cloudcircuit.providers import TargetSelector
    from cloudcircuit.state import MemoryStore

    decision = Decision(budget="bench", scope={}, action="block", severity="critical", reason="")
    target = TargetSelector(resource_types=("ec2:instance",), tags={"team": "bulk"})
    out: dict[str, Any] = {"instances": n}
    with moto_aws("123456789012"):
        ec2 = boto3.client("ec2", region_name="us-east-1")
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "bulk"}]}]
        with console.status(f"launching {n} instances in moto"):
            for start in range(0, n, 1000):
                count = min(1000, n - start)
                ec2.run_instances(
                    ImageId="ami-12c6146b", MinCount=count, MaxCount=count, TagSpecifications=tags
                )
        clients = Clients()
        enforcer = AwsEnforcer(accounts=AccountSet(base=clients), regions=("us-east-1",))
        store = MemoryStore()
        limits = Limits(count=n, percent=100.0)
        for action, params in (
            ("tag", {"key": "cloudcircuit:throttled", "value": "true"}),
            ("stop", {}),
        ):
            clients.calls.clear()
            t0 = time.perf_counter()
            with console.status(f"{action} {n} instances (plan, journal, batch apply)"):
                plan = build_plan(
                    [(ManualAction(action, "aws", target, params), decision)],
                    {"aws": enforcer},
                    max_resources=limits,
                )
                outcomes = execute_plan(plan, store, dry_run=False)
            wall = time.perf_counter() - t0
            done = Counter(o.status for o in outcomes)
            op = "CreateTags" if action == "tag" else "StopInstances"
            size = TAG_BATCH_EC2 if action == "tag" else EC2_BATCH
            out[action] = {
                "wall_s": round(wall, 2),
                "mutating_calls": clients.calls[("ec2", op)],
                "minimum_mutating_calls": math.ceil(n / size),
                "naive_per_resource_calls": n,
                "describe_calls": clients.calls[("ec2", "DescribeInstances")],
                "total_calls": sum(clients.calls.values()),
                "statuses": dict(done),
            }
    return out


def _zip(quick: bool) -> dict[str, Any]:
    report = ROOT / "dist" / "cloudcircuit-aws-lambda.json"
    if not report.exists():
        with console.status("building the Lambda zip (make lambda-zip)"):
            subprocess.run(
                [sys.executable, str(ROOT / "adapters" / "aws" / "build_lambda.py")],
                check=True,
                capture_output=True,
            )
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    n = 500 if quick else 5000
    results: dict[str, Any] = {
        "ce": _ce(page_size=30),
        "ec2": _ec2(n),
        "lambda_zip": _zip(quick),
    }
    ce = results["ce"]
    t1 = Table(title="Cost Explorer: 90-day daily scan grouped by service (moto, 30 days/page)")
    for col in ("run", "requests", "USD", "cached buckets", "vs first"):
        t1.add_column(col, justify="right")
    base = max(ce["first"]["requests"], 1)
    for name in ("first", "repeat_cached", "repeat_uncached"):
        row = ce[name]
        t1.add_row(
            name,
            str(row["requests"]),
            f"{row['cost_usd']:.2f}",
            str(row["cached_buckets"]),
            f"{row['requests'] / base:.2f}x",
        )
    console.print(t1)
    ec2 = results["ec2"]
    t2 = Table(title=f"{ec2['instances']} EC2 instances in moto: tag then stop")
    for col in (
        "action",
        "mutating calls",
        "minimum",
        "per-resource",
        "saved",
        "describes",
        "total",
        "wall s",
    ):
        t2.add_column(col, justify="right")
    for action in ("tag", "stop"):
        row = ec2[action]
        t2.add_row(
            action,
            str(row["mutating_calls"]),
            str(row["minimum_mutating_calls"]),
            str(row["naive_per_resource_calls"]),
            f"{row['naive_per_resource_calls'] / max(row['mutating_calls'], 1):.0f}x",
            str(row["describe_calls"]),
            str(row["total_calls"]),
            f"{row['wall_s']:.1f}",
        )
    console.print(t2)
    z = results["lambda_zip"]
    t3 = Table(title="Lambda package (core + AWS adapter; boto3 from the runtime)")
    for col in ("zip MB", "unzipped MB", "of 250 MB", "handler import ms", "first invocation ms"):
        t3.add_column(col, justify="right")
    t3.add_row(
        f"{z['zip_bytes'] / 1e6:.1f}",
        f"{z['unzipped_bytes'] / 1e6:.1f}",
        f"{z['unzipped_bytes'] / 250e6:.0%}",
        str(z["handler_import_ms"]),
        str(z["first_invocation_imports_ms"]),
    )
    console.print(t3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "aws.json").write_text(json.dumps(results, indent=2))
    ok = all(ec2[a]["mutating_calls"] == ec2[a]["minimum_mutating_calls"] for a in ("tag", "stop"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
