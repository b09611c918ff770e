"""What each enforcement action may target and which parameters it takes.

One table, read by the policy validator (so a typo in ``resource_types`` fails at ``validate``
time, not during an incident) and by the provider adapters (so the two never disagree). A
provider absent from :data:`RESOURCE_TYPES` is not checked here: its adapter validates its own
types when it resolves targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = [
    "ACTIONS",
    "ACTION_PARAMS",
    "RESOURCE_TYPES",
    "ActionName",
    "ParamSpec",
    "actions_for",
    "known_resource_types",
]

ActionName = Literal["tag", "stop", "scale_down"]

#: every action a policy can ask for, in order of increasing disruption
ACTIONS: tuple[ActionName, ...] = ("tag", "scale_down", "stop")

#: provider -> resource type -> the actions that resource type supports.
#: ``tag`` marks a resource (throttle signal for your own automation); ``stop`` stops it
#: (EC2 instance, RDS instance; Lambda: reserved concurrency 0); ``scale_down`` scales to zero
#: (Auto Scaling group and EKS node group min/desired 0, ECS desired count 0, Lambda reserved
#: concurrency 0). Enforcement journals the previous state, so both are undone by ``restore``.
RESOURCE_TYPES: Mapping[str, Mapping[str, frozenset[ActionName]]] = {
    "aws": {
        "ec2:instance": frozenset({"tag", "stop"}),
        "autoscaling:group": frozenset({"tag", "scale_down"}),
        "ecs:service": frozenset({"tag", "scale_down"}),
        "lambda:function": frozenset({"tag", "stop", "scale_down"}),
        "rds:db": frozenset({"tag", "stop"}),
        "eks:nodegroup": frozenset({"tag", "scale_down"}),
    },
}


class ParamSpec:
    """One parameter of an action: its Python type, whether it is required, its lower bound."""

    __slots__ = ("description", "minimum", "required", "type")

    def __init__(
        self,
        type_: type,
        *,
        required: bool = False,
        minimum: int | None = None,
        description: str = "",
    ) -> None:
        self.type = type_
        self.required = required
        self.minimum = minimum
        self.description = description


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


def known_resource_types(provider: str) -> frozenset[str] | None:
    """The resource types known for ``provider``, or None when this table does not cover it."""
    types = RESOURCE_TYPES.get(provider)
    return None if types is None else frozenset(types)


def actions_for(provider: str, resource_type: str) -> frozenset[ActionName] | None:
    """Actions ``resource_type`` supports, or None when the provider or type is not covered."""
    return RESOURCE_TYPES.get(provider, {}).get(resource_type)
