"""Provider discovery and settings, and where boto3 may be imported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cloudcircuit_aws.actions import AwsEnforcer
from cloudcircuit_aws.costs import CostExplorerSource

from cloudcircuit.errors import ConfigError
from cloudcircuit.providers import Enforcer, SpendSource, load_provider

ROOT = Path(__file__).resolve().parents[3]


def test_entry_point_and_settings(tmp_path: Path) -> None:
    provider = load_provider("aws")
    source = provider.source(
        {
            "region": "eu-west-1",
            "metric": "NetUnblendedCost",
            "api_budget_usd": 0.5,
            "state": f"sqlite:///{tmp_path / 's.db'}",
        }
    )
    assert isinstance(source, SpendSource) and isinstance(source, CostExplorerSource)
    assert source.metric == "NetUnblendedCost" and source.api_budget_usd == 0.5
    assert source.clients.region == "eu-west-1" and source.store is not None
    enforcer = provider.enforcer(
        {"regions": ["us-east-1", "eu-west-1"], "role_name": "Enforcer", "accounts": ["1"]}
    )
    assert isinstance(enforcer, Enforcer) and isinstance(enforcer, AwsEnforcer)
    assert enforcer.regions == ("us-east-1", "eu-west-1")
    assert enforcer.accounts.role_name == "Enforcer" and enforcer.accounts.accounts == ("1",)
    assert provider.source({"arg": "prod"}).clients.profile == "prod"


def test_unknown_or_bad_settings_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"settings\.regoin"):
        load_provider("aws").source({"regoin": "x"})
    with pytest.raises(ConfigError, match="settings"):
        load_provider("aws").source({"api_budget_usd": "lots"})


def test_boto3_is_imported_only_in_the_aws_adapter() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+(boto3|botocore)\b", re.MULTILINE)
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    inside = [
        p.name
        for p in (ROOT / "adapters" / "aws" / "src").rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert "clients.py" in inside
