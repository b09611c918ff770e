"""moto for every AWS test, and a recorder of every AWS operation the adapter makes (the IAM
coverage test compares it with the Terraform policy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_recorder import RECORDED
from cloudcircuit_aws.clients import observe_calls


@pytest.fixture(autouse=True, scope="session")
def _record_aws_calls() -> Iterator[None]:
    remove = observe_calls(lambda service, op: RECORDED.add((service, op)))
    yield
    remove()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto AWS with fake credentials (never a real account)."""
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield
