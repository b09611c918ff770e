"""Provider discovery and the small contracts in cloudcircuit.providers."""

from __future__ import annotations

import pytest

from cloudcircuit.errors import ProviderNotInstalledError
from cloudcircuit.providers import Resource, TargetSelector, available_providers, load_provider


def test_uninstalled_provider_names_the_package() -> None:
    with pytest.raises(ProviderNotInstalledError, match="pip install cloudcircuit-gcp"):
        load_provider("gcp")
    with pytest.raises(ProviderNotInstalledError, match="pip install cloudcircuit-oracle"):
        load_provider("oracle")


def test_available_providers_is_sorted_list() -> None:
    names = available_providers()
    assert names == sorted(names)


def test_target_selector_matching() -> None:
    r = Resource(
        provider="aws",
        type="ec2:instance",
        id="i-1",
        region="us-east-1",
        account="111",
        tags={"team": "ml", "env": "prod"},
    )
    assert TargetSelector().matches(r)
    assert TargetSelector(tags={"team": "ml"}).matches(r)
    assert TargetSelector(tags={"team": "*"}).matches(r)
    assert not TargetSelector(tags={"team": "web"}).matches(r)
    assert not TargetSelector(tags={"owner": "*"}).matches(r)
    assert TargetSelector(resource_types=("ec2:instance",), regions=("us-east-1",)).matches(r)
    assert not TargetSelector(resource_types=("rds:db",)).matches(r)
    assert not TargetSelector(regions=("eu-west-1",)).matches(r)
    assert not TargetSelector(accounts=("222",)).matches(r)
