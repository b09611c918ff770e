"""cloudcircuit-aws: Cost Explorer source, organization-wide reversible enforcement, a
DynamoDB state store and the Lambda handler.

Importing this package does not import boto3 (clients are built lazily in :mod:`.clients`).
"""

from __future__ import annotations

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
