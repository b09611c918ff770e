"""What each enforcement action may target and which parameters it takes.

One table, read by the policy validator (so a typo in ``resource_types`` fails at ``validate``
time, not during an incident) and by the provider adapters (so the two never disagree). A
provider absent from :data:`RESOURCE_TYPES` is not checked here: its adapter validates its own
types when it resolves targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACTIONS",
    "ACTION_PARAMS",
    "BILLING_PROVIDER_NAMES",
    "RESOURCE_TYPES",
    "ActionName",
    "ParamSpec",
    "actions_for",
    "known_resource_types",
    "provider_entry_name",
]

ActionName = Literal["tag", "stop", "scale_down"]

#: every action a policy can ask for, in order of increasing disruption
ACTIONS: tuple[ActionName, ...] = ("tag", "scale_down", "stop")

_ALL: frozenset[ActionName] = frozenset(ACTIONS)

#: provider -> resource type -> the actions that resource type supports.
#: ``tag`` marks a resource (a throttle signal for people and automation). On AWS ``stop`` and
#: ``scale_down`` are the same thing, bring the resource to zero capacity: EC2 and RDS stopped,
#: Auto Scaling group min/desired/max 0, EKS node group min/desired 0, ECS desired count 0,
#: Lambda reserved concurrency 0. Enforcement journals the previous state, so ``restore`` puts
#: it back. A provider whose actions differ per type lists a smaller set for that type.
RESOURCE_TYPES: Mapping[str, Mapping[str, frozenset[ActionName]]] = {
    "aws": {
        "ec2:instance": _ALL,
        "autoscaling:group": _ALL,
        "ecs:service": _ALL,
        "lambda:function": _ALL,
        "rds:db": _ALL,
        "eks:nodegroup": _ALL,
    },
}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of an action: its Python type and whether it must be given."""

    type: type
    required: bool = False
    description: str = ""


#: action -> parameter name -> spec. Unknown parameters are an error (a typo would otherwise
#: silently change what enforcement does).
ACTION_PARAMS: Mapping[ActionName, Mapping[str, ParamSpec]] = {
    "tag": {
        "key": ParamSpec(str, required=True, description="tag key to set"),
        "value": ParamSpec(str, required=True, description="tag value to set"),
    },
    "stop": {},
    "scale_down": {},
}


#: billing provider name (FOCUS ProviderName, lower case) -> provider entry-point name
BILLING_PROVIDER_NAMES: Mapping[str, str] = {
    "aws": "aws",
    "amazon web services": "aws",
    "microsoft": "azure",
    "microsoft azure": "azure",
    "azure": "azure",
    "google cloud": "gcp",
    "google cloud platform": "gcp",
    "gcp": "gcp",
}


def provider_entry_name(billing_name: str) -> str:
    """The provider package that reads ``billing_name`` spend (``"Microsoft"`` -> ``"azure"``);
    an unknown name is returned lower-cased."""
    folded = billing_name.strip().casefold()
    return BILLING_PROVIDER_NAMES.get(folded, folded)


def known_resource_types(provider: str) -> frozenset[str] | None:
    """The resource types known for ``provider``, or None when this table does not cover it."""
    types = RESOURCE_TYPES.get(provider)
    return None if types is None else frozenset(types)


def actions_for(provider: str, resource_type: str) -> frozenset[ActionName] | None:
    """Actions ``resource_type`` supports, or None when the provider or type is not covered."""
    return RESOURCE_TYPES.get(provider, {}).get(resource_type)
