"""The policy file: budgets per scope, detectors, enforcement actions, alert sinks.

``load_policy(path)`` reads and validates a YAML policy (every problem reported with its path);
the models are pydantic v2, frozen, and reject unknown keys. ``policy_json_schema()`` is the
JSON Schema for editors. The resource types and action parameters each provider supports are
in :mod:`cloudcircuit.policy.catalog`, shared with the provider adapters.
"""

from __future__ import annotations

from cloudcircuit.policy.catalog import ACTION_PARAMS, ACTIONS, RESOURCE_TYPES, ActionName
from cloudcircuit.policy.loader import interpolate, load_policy, parse_policy, policy_json_schema
from cloudcircuit.policy.models import (
    SCOPE_DIMENSIONS,
    ActionSpec,
    AlertSinkConfig,
    BreakerSettings,
    Budget,
    BurnRateSettings,
    Defaults,
    DetectorRule,
    DetectorSettings,
    EnforcementSettings,
    ForecastSettings,
    MaxResources,
    PagerDutySinkConfig,
    Policy,
    PolicyModel,
    ProblemsError,
    RobustSettings,
    ScopeSelector,
    SelectorSpec,
    SinkBase,
    SlackSinkConfig,
    SourceConfig,
    SpikeSettings,
    WebhookSinkConfig,
)

__all__ = [
    "ACTIONS",
    "ACTION_PARAMS",
    "RESOURCE_TYPES",
    "SCOPE_DIMENSIONS",
    "ActionName",
    "ActionSpec",
    "AlertSinkConfig",
    "BreakerSettings",
    "Budget",
    "BurnRateSettings",
    "Defaults",
    "DetectorRule",
    "DetectorSettings",
    "EnforcementSettings",
    "ForecastSettings",
    "MaxResources",
    "PagerDutySinkConfig",
    "Policy",
    "PolicyModel",
    "ProblemsError",
    "RobustSettings",
    "ScopeSelector",
    "SelectorSpec",
    "SinkBase",
    "SlackSinkConfig",
    "SourceConfig",
    "SpikeSettings",
    "WebhookSinkConfig",
    "interpolate",
    "load_policy",
    "parse_policy",
    "policy_json_schema",
]
