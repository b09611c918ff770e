"""Cost Explorer source: moto's queued results, paging, caching, the API cap, parsing of the
real cloudscape / aws-cli responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cloudcircuit_aws.ce_emulator import CostExplorerSeeder, demo_charges, queue_ce_results
from cloudcircuit_aws.clients import Clients
from cloudcircuit_aws.costs import CostExplorerSource, ce_filter, ce_group_by, parse_response

from cloudcircuit.errors import ApiBudgetExceededError, CurrencyMismatchError, InputError
from cloudcircuit.providers import SpendQuery
from cloudcircuit.spend import CostBasis, Granularity
from cloudcircuit.state import MemoryStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def source(**kw: object) -> tuple[CostExplorerSource, CostExplorerSeeder]:
    clients = Clients()
    src = CostExplorerSource(clients=clients, now=NOW, **kw)  # type: ignore[arg-type]
    seeder = CostExplorerSeeder(demo_charges(NOW, days=100), now=NOW, page_size=30)
    seeder.attach(clients.client("ce"))
    return src, seeder


def q(days: int = 90, **kw: object) -> SpendQuery:
    end = datetime(2026, 11, 24, tzinfo=UTC)
    return SpendQuery(start=end - timedelta(days=days), end=end, **kw)  # type: ignore[arg-type]


def test_daily_by_service_follows_every_page_and_counts_requests(aws: None) -> None:
    src, _ = source()
    result = src.fetch(q(group_by=("service",)))
    # 90 daily buckets, 30 per page -> 3 requests
    assert result.stats.requests == 3
    assert result.stats.api_cost_usd == pytest.approx(0.03)
    by = {s.scope["service"]: s for s in result.series}
    assert len(by) == 6
    ec2 = by["Amazon Elastic Compute Cloud"]
    assert len(ec2) == 90 and ec2.granularity is Granularity.DAY
    # runaway: the last complete days are 6x
    assert ec2.amounts[-3] == pytest.approx(6 * 180 * (0.6 if ec2.starts[-3].weekday() >= 5 else 1))
    # estimated / unsettled buckets are incomplete, older ones complete
    assert not ec2.complete[-1] and not ec2.complete[-2] and ec2.complete[-3]


def test_filters_and_two_group_keys_with_untagged(aws: None) -> None:
    src, _ = source()
    result = src.fetch(
        q(days=10, group_by=("sub_account", "tag:team"), filters={"sub_account": ("111111111111",)})
    )
    scopes = sorted((s.scope["sub_account"], s.scope["tag:team"]) for s in result.series)
    assert scopes == [("111111111111", "data"), ("111111111111", "platform")]
    src2, _ = source()
    untagged = src2.fetch(q(days=3, group_by=("tag:env",)))
    assert "" in {s.scope["tag:env"] for s in untagged.series}  # team=platform lambda has no env


def test_cache_makes_repeat_scan_ask_only_for_open_buckets(aws: None) -> None:
    store = MemoryStore()
    src, _ = source(store=store)
    first = src.fetch(q(group_by=("service",)))
    assert first.stats.requests == 3 and first.stats.cached_buckets == 0
    src.begin_scan()
    second = src.fetch(q(group_by=("service",)))
    # only the 2 unsettled days are asked again: one page
    assert second.stats.requests == 1
    assert second.stats.cached_buckets == 88
    for a, b in zip(first.series, second.series, strict=True):
        assert a.key == b.key
        assert a.amounts.tolist() == pytest.approx(b.amounts.tolist())


def test_api_budget_cap_stops_before_exceeding(aws: None) -> None:
    src, seeder = source(api_budget_usd=0.02)
    with pytest.raises(ApiBudgetExceededError, match="request 3"):
        src.fetch(q(group_by=("service",)))
    assert seeder.requests == 2  # the third page was never asked for


def test_monthly_hourly_and_effective_basis(aws: None) -> None:
    src, _ = source()
    month = src.fetch(
        SpendQuery(
            start=datetime(2026, 9, 1, tzinfo=UTC),
            end=datetime(2026, 12, 1, tzinfo=UTC),
            granularity=Granularity.MONTH,
            cost_basis=CostBasis.EFFECTIVE,
        )
    )
    assert [s.month for s in month.series[0].starts] == [9, 10, 11]
    assert month.series[0].complete.tolist() == [True, True, False]
    hourly = src.fetch(
        SpendQuery(
            start=NOW - timedelta(hours=30),
            end=NOW,
            granularity=Granularity.HOUR,
            filters={"service": ("AWS Lambda",)},
        )
    )
    assert len(hourly.series[0]) == 30
    assert hourly.series[0].amounts[0] == pytest.approx(8 / 24)


def test_group_by_and_filter_translation() -> None:
    assert ce_group_by(["service", "tag:team"]) == [
        {"Type": "DIMENSION", "Key": "SERVICE"},
        {"Type": "TAG", "Key": "team"},
    ]
    with pytest.raises(InputError, match="at most two"):
        ce_group_by(["service", "region", "sub_account"])
    with pytest.raises(InputError, match="resource"):
        ce_group_by(["resource"])
    assert ce_filter({"tag:team": ("ml", "")}) == {
        "Or": [
            {"Tags": {"Key": "team", "Values": ["ml"], "MatchOptions": ["EQUALS"]}},
            {"Tags": {"Key": "team", "MatchOptions": ["ABSENT"]}},
        ]
    }
    assert ce_filter({"provider": ("aws",)}) is None
    with pytest.raises(InputError):
        CostExplorerSource(metric="Bogus")


def test_cloudscape_monthly_by_service_sums_exactly(shared_data: Path) -> None:
    page = json.loads(
        (
            shared_data
            / "aws_cost_explorer_response_sample_cloudscape"
            / "GetCostAndUsage_monthly_by_SERVICE.json"
        ).read_text()
    )
    group_by = page.get("GroupDefinitions") or [{"Type": "DIMENSION", "Key": "SERVICE"}]
    buckets = parse_response(page, "UnblendedCost", group_by)
    totals = {start.month: sum(b.values(), Decimal(0)) for start, b in buckets.items()}
    assert abs(totals[4] - Decimal("205.447907")) < Decimal("0.0000005")
    grand = sum(totals.values(), Decimal(0))
    assert abs(grand - Decimal("1957.679944")) < Decimal("0.000001")
    assert any(
        k == ("Amazon Relational Database Service",)
        for k in buckets[datetime(2023, 5, 1, tzinfo=UTC)]
    )


def test_awscli_example_tag_keys_and_queue(aws: None, shared_data: Path) -> None:
    page = json.loads(
        (
            shared_data
            / "aws_cost_explorer_response_sample_cloudscape"
            / "awscli_example"
            / "get-cost-and-usage_output.json"
        ).read_text()
    )
    group_by = page["GroupDefinitions"]
    buckets = parse_response(page, "BlendedCost", group_by)
    keys = {k for b in buckets.values() for k in b}
    assert any(k[1] == "" for k in keys) and any(k[1] == "Dev" for k in keys)
    # the same real page served by moto's queue through the source
    page.pop("NextPageToken", None)
    queue_ce_results([page])
    start = datetime.fromisoformat(page["ResultsByTime"][0]["TimePeriod"]["Start"]).replace(
        tzinfo=UTC
    )
    src = CostExplorerSource(clients=Clients(), metric="BlendedCost", now=NOW)
    got = src.fetch(
        SpendQuery(
            start=start,
            end=(start + timedelta(days=32)).replace(day=1),
            granularity=Granularity.MONTH,
            group_by=("service", "tag:Environment"),
        )
    )
    total = sum(s.total() for s in got.series)
    expected = sum(float(v) for b in buckets.values() for v in b.values())
    assert total == pytest.approx(expected)


def test_currency_mismatch_is_reported(aws: None) -> None:
    queue_ce_results(
        [
            {
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"},
                        "Total": {},
                        "Groups": [
                            {
                                "Keys": ["a"],
                                "Metrics": {"UnblendedCost": {"Amount": "1", "Unit": "USD"}},
                            },
                            {
                                "Keys": ["b"],
                                "Metrics": {"UnblendedCost": {"Amount": "1", "Unit": "EUR"}},
                            },
                        ],
                        "Estimated": False,
                    }
                ]
            }
        ]
    )
    src = CostExplorerSource(clients=Clients(), now=NOW)
    with pytest.raises(CurrencyMismatchError, match="EUR"):
        src.fetch(
            SpendQuery(
                start=datetime(2026, 11, 1, tzinfo=UTC),
                end=datetime(2026, 11, 2, tzinfo=UTC),
                group_by=("service",),
            )
        )


class _Throttling:
    """A Cost Explorer client that always throttles (moto cannot)."""

    def get_cost_and_usage(self, **_: object) -> dict[str, object]:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "LimitExceededException", "Message": "Rate exceeded"}},
            "GetCostAndUsage",
        )


def test_throttling_and_hourly_limits_are_clear_errors() -> None:
    from cloudcircuit.errors import ThrottledError

    clients = Clients()
    clients._clients[("ce", "us-east-1")] = _Throttling()
    src = CostExplorerSource(clients=clients, now=NOW)
    with pytest.raises(ThrottledError, match="LimitExceededException"):
        src.fetch(q(days=2))
    with pytest.raises(InputError, match="14 days"):
        src.fetch(SpendQuery(start=NOW - timedelta(days=20), end=NOW, granularity=Granularity.HOUR))


def test_organization_wide_scan_sums_accounts_and_reports_failures(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from cloudcircuit_aws.orgs import AccountSet

    from cloudcircuit.errors import ProviderError

    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    made = [
        org.create_account(AccountName=f"m{i}", Email=f"m{i}@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        for i in range(3)
    ]
    for i, account in enumerate(made):
        group = {
            "Keys": ["Amazon EC2"],
            "Metrics": {"UnblendedCost": {"Amount": f"{i + 1}.25", "Unit": "USD"}},
        }
        period = {"Start": "2026-11-01", "End": "2026-11-02"}
        result = {
            "ResultsByTime": [
                {"TimePeriod": period, "Total": {}, "Groups": [group], "Estimated": False}
            ]
        }
        queue_ce_results([result], account=account)
    real = AccountSet.clients

    def flaky(self: AccountSet, account: str | None) -> Clients:
        if account == made[2]:
            raise ProviderError(f"cannot assume arn:aws:iam::{account}:role/Reader")
        return real(self, account)

    monkeypatch.setattr(AccountSet, "clients", flaky)
    accounts = AccountSet(base=Clients(), role_name="Reader", organization=True, max_workers=2)
    src = CostExplorerSource(clients=Clients(), accounts=accounts, now=NOW)
    got = src.fetch(
        SpendQuery(
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 11, 2, tzinfo=UTC),
            group_by=("service",),
        )
    )
    by = {s.scope["service"]: s.amounts.tolist() for s in got.series}
    assert by == {"Amazon EC2": [3.5]}  # 1.25 + 2.25; the failed account is not guessed
    assert any(made[2] in note for note in got.stats.notes)
    assert got.stats.requests == len(accounts.members()) - 1
    assert got.stats.api_cost_usd == pytest.approx(0.01 * got.stats.requests)


def test_end_mid_bucket_is_rounded_up_to_the_bucket_end(aws: None) -> None:
    src, _ = source()
    got = src.fetch(SpendQuery(start=NOW - timedelta(days=3), end=NOW, group_by=("service",)))
    ec2 = next(s for s in got.series if s.scope["service"] == "Amazon Elastic Compute Cloud")
    assert len(ec2) == 4 and ec2.amounts[-1] > 0  # today's partial bucket was asked for
    assert not ec2.complete[-1]
