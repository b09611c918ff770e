"""Enforcement settings and action steps: what throttle and block do, and the safety rails.

Targets are chosen by tags (and optionally regions and accounts), never by hard-coded IDs; the
resource types and parameters each action accepts come from :mod:`cloudcircuit.policy.catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator, model_validator

from cloudcircuit.policy._base import (
    PolicyModel,
    ProblemsError,
    check_name,
    non_empty_strings,
    suggest,
)
from cloudcircuit.policy.catalog import (
    ACTION_PARAMS,
    RESOURCE_TYPES,
    ActionName,
    provider_entry_name,
)
from cloudcircuit.providers import TargetSelector

__all__ = ["ActionSpec", "EnforcementSettings", "MaxResources", "SelectorSpec"]

_PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


class MaxResources(PolicyModel):
    """Safety rail: a plan touching more resources than this is aborted before any action."""

    count: int = Field(default=25, ge=1, description="Most resources one plan may act on.")
    percent: float = Field(
        default=20.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description=(
            "Most resources one action may act on, as a percent of its population: the "
            "resources of the same types, accounts and regions, tag selectors left out "
            "(so a selector matching most of a fleet aborts the plan)."
        ),
    )


class EnforcementSettings(PolicyModel):
    """Safety rails around enforcement."""

    protect_tag: str = Field(
        default="cloudcircuit:protect=true",
        description="KEY=VALUE: resources with this tag are never acted on.",
    )
    max_resources: MaxResources = Field(
        default_factory=MaxResources, description="Plan size limits."
    )

    @field_validator("protect_tag")
    @classmethod
    def _protect(cls, value: str) -> str:
        key, sep, tag_value = value.partition("=")
        if not sep or not key.strip() or not tag_value.strip():
            raise ValueError(f"must be KEY=VALUE (e.g. 'cloudcircuit:protect=true'), got {value!r}")
        return value

    @property
    def protect(self) -> tuple[str, str]:
        """The protect tag as ``(key, value)``."""
        key, _, value = self.protect_tag.partition("=")
        return key.strip(), value.strip()


class SelectorSpec(PolicyModel):
    """Which resources an action targets: tags (and optionally regions, accounts), never IDs."""

    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags a resource must carry, all of them; value '*' means 'tag present'.",
    )
    regions: list[str] = Field(default_factory=list, description="Regions to look in (empty=all).")
    accounts: list[str] = Field(
        default_factory=list, description="Accounts to look in (empty = the enforcer's own)."
    )

    @field_validator("regions", "accounts")
    @classmethod
    def _values(cls, value: list[str]) -> list[str]:
        return non_empty_strings(value, "the list")

    def to_target(self, resource_types: Sequence[str] = ()) -> TargetSelector:
        """The provider-neutral :class:`~cloudcircuit.providers.TargetSelector`."""
        return TargetSelector(
            resource_types=tuple(resource_types),
            tags=dict(self.tags),
            regions=tuple(self.regions),
            accounts=tuple(self.accounts),
        )


class ActionSpec(PolicyModel):
    """One enforcement step: an action on resources of a provider chosen by tag selectors."""

    action: ActionName = Field(
        description="'tag' (mark resources), 'scale_down' (capacity to zero) or 'stop'; both "
        "are journaled and undone by 'cloudcircuit restore'."
    )
    provider: str = Field(description="Provider whose enforcer acts (e.g. 'aws').")
    resource_types: list[str] = Field(
        default_factory=list,
        description="Resource types to act on, e.g. 'ec2:instance', 'autoscaling:group', "
        "'ecs:service', 'lambda:function', 'rds:db', 'eks:nodegroup'. Empty: every type the "
        "action supports.",
    )
    selector: SelectorSpec = Field(
        default_factory=SelectorSpec, description="Which resources (by tag, region, account)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Action parameters: tag needs key and value; stop and scale_down take none.",
    )

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        check_name(value, "provider")
        if not _PROVIDER_RE.match(value):
            raise ValueError(
                f"write the provider's package name ({provider_entry_name(value)!r}), not "
                f"{value!r}: lower case, as registered in 'cloudcircuit.providers'"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> ActionSpec:
        problems: list[tuple[str, str]] = []
        known = RESOURCE_TYPES.get(self.provider)
        if known is not None:
            for i, rtype in enumerate(self.resource_types):
                if rtype not in known:
                    hint = suggest(rtype, known)
                    problems.append(
                        (
                            f"resource_types[{i}]",
                            f"{rtype!r} is not a known {self.provider} resource type{hint} "
                            f"(known: {', '.join(sorted(known))})",
                        )
                    )
                elif self.action not in known[rtype]:
                    can = ", ".join(sorted(known[rtype]))
                    problems.append(
                        (
                            f"resource_types[{i}]",
                            f"action {self.action!r} does not apply to {rtype!r} "
                            f"(it supports: {can})",
                        )
                    )
        specs = ACTION_PARAMS[self.action]
        for name, spec in specs.items():
            if spec.required and name not in self.params:
                problems.append(
                    (
                        f"params.{name}",
                        f"is required by action {self.action!r} ({spec.description})",
                    )
                )
        for name, value in self.params.items():
            where = f"params.{name}"
            if name not in specs:
                allowed = ", ".join(specs) or "none"
                hint = suggest(name, specs)
                problems.append(
                    (where, f"not a parameter of action {self.action!r}{hint} (allowed: {allowed})")
                )
                continue
            spec = specs[name]
            if spec.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append((where, f"expected a whole number, got {value!r}"))
            elif spec.type is str and not isinstance(value, str):
                problems.append((where, f"expected a string, got {value!r} (quote it)"))
            elif name == "key" and isinstance(value, str) and not value.strip():
                problems.append((where, "must not be empty"))
        if problems:
            raise ProblemsError(problems)
        return self

    def target(self) -> TargetSelector:
        """The resources this step targets, as a provider-neutral selector."""
        return self.selector.to_target(self.resource_types)
