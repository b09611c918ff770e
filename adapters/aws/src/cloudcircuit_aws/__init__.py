"""cloudcircuit-aws: Cost Explorer source, organization-wide reversible enforcement, a
DynamoDB state store and the Lambda handler.

Importing this package imports neither boto3 nor the core: names are loaded on first use
(PEP 562), so the Lambda handler module starts fast and clients are built lazily in
:mod:`.clients`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudcircuit_aws.actions import AwsEnforcer
    from cloudcircuit_aws.clients import Clients, observe_calls
    from cloudcircuit_aws.costs import CostExplorerSource
    from cloudcircuit_aws.provider import AwsProvider
    from cloudcircuit_aws.state import DynamoDBStateStore, open_dynamodb_state

__all__ = [
    "AwsEnforcer",
    "AwsProvider",
    "Clients",
    "CostExplorerSource",
    "DynamoDBStateStore",
    "observe_calls",
    "open_dynamodb_state",
]

_WHERE = {
    "AwsEnforcer": "actions",
    "AwsProvider": "provider",
    "Clients": "clients",
    "CostExplorerSource": "costs",
    "DynamoDBStateStore": "state",
    "observe_calls": "clients",
    "open_dynamodb_state": "state",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudcircuit_aws' has no attribute {name!r}")
    return getattr(import_module(f"cloudcircuit_aws.{module}"), name)
