"""The policy file: budgets per scope, detectors, enforcement actions, alert sinks.

``load_policy(path)`` reads and validates a YAML policy (every problem reported with its path);
the models are pydantic v2, frozen, and reject unknown keys. ``policy_json_schema()`` is the
JSON Schema for editors. The resource types and action parameters each provider supports are
in :mod:`cloudcircuit.policy.catalog`, shared with the provider adapters.

Modules: ``models`` (Policy, Budget, scope, sources), ``detectors``, ``actions`` (enforcement),
``sinks`` (alerts), ``catalog``, ``loader`` (YAML, ``${VAR}``, error translation).
"""

from __future__ import annotations

from cloudcircuit.policy._base import PolicyModel, ProblemsError, duplicate_names
from cloudcircuit.policy.actions import ActionSpec, EnforcementSettings, MaxResources, SelectorSpec
from cloudcircuit.policy.catalog import ACTION_PARAMS, ACTIONS, RESOURCE_TYPES, ActionName
from cloudcircuit.policy.detectors import (
    BurnRateSettings,
    DetectorRule,
    DetectorSettings,
    ForecastSettings,
    RobustSettings,
    SpikeSettings,
)
from cloudcircuit.policy.loader import interpolate, load_policy, parse_policy, policy_json_schema
from cloudcircuit.policy.models import (
    SCOPE_DIMENSIONS,
    BreakerSettings,
    Budget,
    Defaults,
    Policy,
    ScopeSelector,
    SourceConfig,
)
from cloudcircuit.policy.sinks import (
    AlertSinkConfig,
    PagerDutySinkConfig,
    SinkBase,
    SlackSinkConfig,
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
    "duplicate_names",
    "interpolate",
    "load_policy",
    "parse_policy",
    "policy_json_schema",
]
