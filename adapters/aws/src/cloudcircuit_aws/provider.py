"""The ``aws`` provider registered under the ``cloudcircuit.providers`` entry point.

``settings`` is the policy's ``sources[].settings`` (or the enforcer settings) mapping:

=====================  ===================================================================
``region``             default region of the clients (Cost Explorer lives in us-east-1)
``profile``            a named AWS profile (local use)
``role_arn``           assume this role first (e.g. the payer account's read role)
``metric``             override the Cost Explorer metric (UnblendedCost, NetAmortizedCost,
                       NetUnblendedCost, BlendedCost, AmortizedCost)
``api_budget_usd``     per-scan Cost Explorer spend cap (default 1.00 = 100 requests)
``settle_hours``       buckets newer than this are incomplete (default 24: CE lags 8-24 h)
``state``              state URL used to cache final buckets (e.g. ``dynamodb://table``)
``regions``            regions the enforcer resolves resources in (default [region])
``role_name``          role assumed in each member account (organization-wide scans: each
                       account's Cost Explorer, summed; and enforcement)
``accounts``           member accounts to work on (default: every ACTIVE org member)
``organization``       list members through Organizations (default: true with role_name)
``max_workers``        accounts worked on at once (default 4)
=====================  ===================================================================

A source given as the string ``aws:NAME`` (``open_source("aws:prod")``) uses the AWS profile
``NAME``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudcircuit.errors import ConfigError
from cloudcircuit_aws.actions import AwsEnforcer
from cloudcircuit_aws.clients import Clients
from cloudcircuit_aws.costs import CostExplorerSource
from cloudcircuit_aws.orgs import AccountSet

__all__ = ["AwsProvider", "base_clients"]

_KNOWN = {
    "arg",
    "region",
    "profile",
    "role_arn",
    "metric",
    "api_budget_usd",
    "settle_hours",
    "state",
    "regions",
    "role_name",
    "accounts",
    "organization",
    "max_workers",
}


def _check(settings: Mapping[str, Any]) -> None:
    unknown = sorted(set(settings) - _KNOWN)
    if unknown:
        raise ConfigError(
            [
                (f"settings.{k}", f"unknown AWS setting; known: {', '.join(sorted(_KNOWN))}")
                for k in unknown
            ]
        )


def base_clients(settings: Mapping[str, Any]) -> Clients:
    """Clients of the configured identity (profile, then optional role)."""
    clients = Clients(
        region=str(settings.get("region", "us-east-1")),
        profile=settings.get("profile") or settings.get("arg") or None,
    )
    role = settings.get("role_arn")
    return clients.assume(str(role)) if role else clients


class AwsProvider:
    """Cost Explorer source + enforcer for AWS."""

    name = "aws"

    def source(self, settings: Mapping[str, Any]) -> CostExplorerSource:
        _check(settings)
        try:
            clients = base_clients(settings)
            source = CostExplorerSource(
                clients=clients,
                accounts=_accounts(settings, clients) if settings.get("role_name") else None,
                metric=settings.get("metric"),
                api_budget_usd=float(settings.get("api_budget_usd", 1.0)),
                settle_hours=float(settings.get("settle_hours", 24.0)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError([("settings", str(exc))]) from exc
        state = settings.get("state")
        if state:
            from cloudcircuit.state import open_state

            source.bind_state(open_state(str(state)))
        return source

    def enforcer(self, settings: Mapping[str, Any]) -> AwsEnforcer:
        _check(settings)
        base = base_clients(settings)
        regions = tuple(settings.get("regions") or (base.region,))
        return AwsEnforcer(
            accounts=_accounts(settings, base), regions=tuple(str(r) for r in regions)
        )


def _accounts(settings: Mapping[str, Any], base: Clients) -> AccountSet:
    role_name = settings.get("role_name")
    return AccountSet(
        base=base,
        role_name=str(role_name) if role_name else None,
        accounts=tuple(str(a) for a in settings.get("accounts", ()) or ()),
        organization=bool(settings.get("organization", role_name is not None)),
        max_workers=int(settings.get("max_workers", 4)),
    )
