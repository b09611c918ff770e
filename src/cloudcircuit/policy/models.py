"""The policy file as pydantic models: what to read, what to judge, what to do about it.

Every model forbids unknown keys (a typo must fail, not be ignored) and is frozen once
validated. Field descriptions become the JSON Schema descriptions editors show on hover.
Cross-field rules (unique names, a budget's provider having a source) live in validators so
``cloudcircuit validate`` reports them together with the type errors, each with its path.
Detector, action and alert-sink settings live in their own modules of this package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from cloudcircuit.burn import format_duration, parse_duration
from cloudcircuit.errors import InputError
from cloudcircuit.policy._base import (
    PolicyModel,
    PositiveFloat,
    ProblemsError,
    RuleAction,
    check_name,
    duplicate_names,
    non_empty_strings,
    repeated,
)
from cloudcircuit.policy.actions import ActionSpec, EnforcementSettings
from cloudcircuit.policy.catalog import provider_entry_name
from cloudcircuit.policy.detectors import DetectorSettings
from cloudcircuit.policy.sinks import AlertSinkConfig
from cloudcircuit.spend import CostBasis, Granularity, parse_dimensions

__all__ = [
    "SCOPE_DIMENSIONS",
    "BreakerSettings",
    "Budget",
    "Defaults",
    "Policy",
    "ScopeSelector",
    "SourceConfig",
]

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

#: scope field -> the spend dimension it filters (spend.DIMENSIONS names)
SCOPE_DIMENSIONS: dict[str, str] = {
    "provider": "provider",
    "account": "sub_account",
    "service": "service",
    "region": "region",
}


# -- sources ------------------------------------------------------------------------------


class SourceConfig(PolicyModel):
    """Where spend is read from: a FOCUS export on disk, or a provider's billing API."""

    name: str = Field(description="Name of this source, unique in the policy (e.g. 'demo').")
    type: str = Field(
        description="'focus' for FOCUS CSV/Parquet files, or a provider name registered in the "
        "'cloudcircuit.providers' entry-point group (e.g. 'aws')."
    )
    path: str | None = Field(
        default=None,
        description="FOCUS sources: a file, a folder or a glob. Relative paths are resolved "
        "against the folder of the policy file.",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Provider-specific settings passed to Provider.source() (region, profile, "
        "API spend cap...).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "source name")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return check_name(value, "source type")

    @model_validator(mode="after")
    def _path_for_focus(self) -> SourceConfig:
        if self.type == "focus" and not (self.path and self.path.strip()):
            raise ProblemsError(
                [("path", "a 'focus' source needs a path (a FOCUS file, folder or glob)")]
            )
        if self.type != "focus" and self.path is not None:
            raise ProblemsError(
                [
                    (
                        "path",
                        f"only 'focus' sources have a path; a {self.type!r} source takes its "
                        "options under 'settings'",
                    )
                ]
            )
        return self


# -- defaults -----------------------------------------------------------------------------


class Defaults(PolicyModel):
    """Policy-wide defaults every budget inherits."""

    currency: str = Field(default="USD", description="ISO 4217 code budgets are expressed in.")
    cost_basis: CostBasis = Field(
        default=CostBasis.BILLED,
        description="'billed' (cash, FOCUS BilledCost) or 'effective' (amortized, EffectiveCost).",
    )
    granularity: Granularity = Field(
        default=Granularity.DAY, description="Bucket size of the series the guardrails judge."
    )
    lookback_days: int = Field(
        default=60, ge=1, le=3660, description="Days of history fetched per scan."
    )
    settle_hours: float = Field(
        default=24.0,
        ge=0,
        allow_inf_nan=False,
        description="Cost data arrives late: buckets ending later than now - settle_hours are "
        "treated as incomplete and not judged as a drop.",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY_RE.match(value):
            raise ValueError(
                f"must be a 3-letter upper-case ISO 4217 code like 'USD', got {value!r}"
            )
        return value


# -- scope --------------------------------------------------------------------------------


class ScopeSelector(PolicyModel):
    """Which spend a budget covers. Every field narrows the scope; an empty field means any.

    A value list means "one of these"; tags must all match.
    """

    provider: list[str] = Field(
        default_factory=list,
        description="Provider names exactly as in the billing data (FOCUS ProviderName, e.g. "
        "'AWS', 'Microsoft', 'Google Cloud').",
    )
    account: list[str] = Field(
        default_factory=list,
        description="Account / subscription / project IDs (FOCUS SubAccountId). Quote them.",
    )
    service: list[str] = Field(
        default_factory=list,
        description="Service names as billed (FOCUS ServiceName, e.g. 'Amazon Elastic Compute "
        "Cloud').",
    )
    region: list[str] = Field(default_factory=list, description="Region IDs (FOCUS RegionId).")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags the spend must carry, all of them (KEY: VALUE)."
    )

    @field_validator("provider", "account", "service", "region")
    @classmethod
    def _values(cls, value: list[str]) -> list[str]:
        return non_empty_strings(value, "the list")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not k.strip() for k in value):
            raise ValueError("tag keys must not be empty")
        return value

    @property
    def is_empty(self) -> bool:
        """True when the selector matches all spend."""
        return not (self.provider or self.account or self.service or self.region or self.tags)

    def to_filters(self) -> dict[str, tuple[str, ...]]:
        """The selector as ``SpendQuery.filters``: dimension name -> allowed values.

        Dimension names are those of :data:`cloudcircuit.spend.DIMENSIONS` (``sub_account``
        for accounts) and ``tag:KEY`` for tags; empty fields are left out (no filter).
        """
        out: dict[str, tuple[str, ...]] = {}
        for field_name, dimension in SCOPE_DIMENSIONS.items():
            values: list[str] = getattr(self, field_name)
            if values:
                out[dimension] = tuple(values)
        for key, value in self.tags.items():
            out[f"tag:{key}"] = (value,)
        return out

    def matches(self, scope: Mapping[str, str]) -> bool:
        """Whether a series scope (dimension -> value) lies inside this selector.

        ``scope`` uses dimension names (``provider``, ``sub_account`` or ``account``,
        ``service``, ``region``, ``tag:KEY``). Values compare exactly, as the source filters
        of :meth:`to_filters` do, except the provider, which ignores case (``aws`` selects
        FOCUS's ``AWS``). A dimension the selector filters on but the scope lacks does not
        match: membership cannot be shown.
        """
        for field_name, dimension in SCOPE_DIMENSIONS.items():
            wanted: list[str] = getattr(self, field_name)
            if not wanted:
                continue
            value = scope.get(dimension)
            if value is None and dimension == "sub_account":
                value = scope.get("account")
            if value is None:
                return False
            if dimension == "provider":
                if value.casefold() not in {w.casefold() for w in wanted}:
                    return False
            elif value not in wanted:
                return False
        return all(scope.get(f"tag:{key}") == value for key, value in self.tags.items())


# -- breaker ------------------------------------------------------------------------------


class BreakerSettings(PolicyModel):
    """The scan circuit breaker: failed or incomplete scans in a row open it."""

    failure_threshold: int = Field(
        default=3, ge=1, description="Consecutive failed or incomplete scans that open it."
    )
    cooldown_scans: int = Field(
        default=2, ge=0, description="Scans it stays open after the failures stop."
    )


# -- budgets ------------------------------------------------------------------------------


class Budget(PolicyModel):
    """An amount of money a scope may spend per period, and what happens as it runs out."""

    name: str = Field(description="Unique name (used in alerts, state keys and reports).")
    scope: ScopeSelector = Field(
        default_factory=ScopeSelector, description="The spend this budget covers (empty: all)."
    )
    group_by: list[str] = Field(
        default_factory=list,
        description="Judge each group of the scope separately against the full amount "
        "(dimensions: provider, account, service, region, resource, tag:KEY). Empty: one "
        "series for the whole scope.",
    )
    period: Literal["day", "month"] = Field(description="Budget period: 'day' or 'month'.")
    amount: PositiveFloat = Field(description="Budget per period, greater than 0.")
    currency: str | None = Field(
        default=None, description="ISO 4217 code; default: defaults.currency."
    )
    warning_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Warn (throttle) when spend reaches this share of the amount, in (0, 1].",
    )
    detectors: DetectorSettings | None = Field(
        default=None,
        description="Detector overrides for this budget; keys set here replace the policy's.",
    )
    throttle: list[ActionSpec] = Field(
        default_factory=list, description="Actions, in order, when the decision is throttle."
    )
    block: list[ActionSpec] = Field(
        default_factory=list, description="Actions, in order, when the decision is block."
    )
    fail_closed: bool = Field(
        default=False,
        description="When the scan breaker is open (spend cannot be read), decide block.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "budget name")

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        try:
            dims = parse_dimensions(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if len(set(dims)) != len(dims):
            raise ValueError(f"names a dimension twice: {', '.join(repeated(dims))}")
        return list(dims)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not _CURRENCY_RE.match(value):
            raise ValueError(
                f"must be a 3-letter upper-case ISO 4217 code like 'USD', got {value!r}"
            )
        return value

    def actions(self, action: RuleAction) -> list[ActionSpec]:
        """The ordered actions for a throttle or block decision."""
        return list(self.throttle if action == "throttle" else self.block)


# -- the policy ---------------------------------------------------------------------------


class Policy(PolicyModel):
    """A cloudcircuit policy: sources, budgets, detectors, enforcement rails and alert sinks."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        title="cloudcircuit policy",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(default=1, description="Policy format version (1).")
    sources: list[SourceConfig] = Field(
        min_length=1, description="Where spend is read from (at least one)."
    )
    state: str = Field(
        default="sqlite:///.cloudcircuit/state.db",
        description="State store URL: sqlite:///PATH (relative to the policy file), "
        "memory://, redis://HOST:PORT/DB, or a scheme a provider registers.",
    )
    defaults: Defaults = Field(default_factory=Defaults, description="Policy-wide defaults.")
    detectors: DetectorSettings = Field(
        default_factory=DetectorSettings, description="Detectors for every budget."
    )
    breaker: BreakerSettings = Field(
        default_factory=BreakerSettings, description="Scan circuit breaker."
    )
    enforcement: EnforcementSettings = Field(
        default_factory=EnforcementSettings, description="Enforcement safety rails."
    )
    budgets: list[Budget] = Field(min_length=1, description="The budgets (at least one).")
    alerts: list[AlertSinkConfig] = Field(
        default_factory=list, description="Where alerts are sent."
    )

    @field_validator("state")
    @classmethod
    def _state(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme:
            raise ValueError(
                f"must be a URL like 'sqlite:///path/state.db', 'memory://' or "
                f"'redis://host:6379/0', got {value!r}"
            )
        if scheme == "sqlite" and not rest.startswith("/"):
            raise ValueError(f"a SQLite URL is sqlite:///PATH (three slashes), got {value!r}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Policy:
        problems = duplicate_names(
            {
                "budgets": [b.name for b in self.budgets],
                "sources": [s.name for s in self.sources],
                "alerts": [a.name for a in self.alerts],
            }
        )
        types = {s.type for s in self.sources}
        if "focus" not in types:  # a FOCUS export may hold any provider's charges
            for i, budget in enumerate(self.budgets):
                for j, provider in enumerate(budget.scope.provider):
                    if provider_entry_name(provider) not in types:
                        problems.append(
                            (
                                f"budgets[{i}].scope.provider[{j}]",
                                f"no source reads provider {provider!r} (source types: "
                                f"{', '.join(sorted(types))})",
                            )
                        )
        problems.extend(self._burn_window_problems())
        if problems:
            raise ProblemsError(problems)
        return self

    def _burn_window_problems(self) -> list[tuple[str, str]]:
        """Burn windows that are not a whole number of the series' buckets (a scan could not
        evaluate them): the policy's own, and those a budget sets for itself."""
        granularity = self.defaults.granularity
        bucket = granularity.seconds
        found: list[tuple[str, str]] = []
        where = [("detectors", self.detectors)]
        where += [
            (f"budgets[{i}].detectors", b.detectors)
            for i, b in enumerate(self.budgets)
            if b.detectors is not None
            and "burn_windows" in b.detectors.model_fields_set
            and "windows" in b.detectors.burn_windows.model_fields_set
        ]
        for path, settings in where:
            for k, spec in enumerate(settings.burn_windows.windows):
                for end in ("long", "short"):
                    seconds = parse_duration(getattr(spec, end))
                    count = seconds / bucket
                    if round(count) < 1 or abs(count - round(count)) > 1e-9 * max(1.0, count):
                        found.append(
                            (
                                f"{path}.burn_windows.windows[{k}].{end}",
                                f"{format_duration(seconds)} is not a whole number of "
                                f"{granularity.value} buckets ({format_duration(bucket)}, "
                                "defaults.granularity)",
                            )
                        )
        return found

    def budget(self, name: str) -> Budget:
        """The budget called ``name``."""
        for budget in self.budgets:
            if budget.name == name:
                return budget
        raise KeyError(name)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def detectors_for(self, budget: Budget) -> DetectorSettings:
        """The budget's detector settings: the policy's, with the budget's overrides on top."""
        return self.detectors.merged(budget.detectors)

    def currency_for(self, budget: Budget) -> str:
        """The currency a budget is expressed in."""
        return budget.currency or self.defaults.currency

    def enforcement_providers(self) -> list[str]:
        """Providers whose enforcer some throttle or block action needs, sorted."""
        return sorted({a.provider for b in self.budgets for a in (*b.throttle, *b.block)})

    def source_providers(self) -> list[str]:
        """Provider names of the non-FOCUS sources, sorted."""
        return sorted({s.type for s in self.sources if s.type != "focus"})
