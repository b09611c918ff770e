"""The policy file as pydantic models: what to read, what to judge, what to do about it.

Every model forbids unknown keys (a typo must fail, not be ignored) and is frozen once
validated. Field descriptions become the JSON Schema descriptions editors show on hover.
Cross-field rules (unique names, a budget's provider having a source, per-action parameters,
resource types per provider) live in validators here so ``cloudcircuit validate`` reports them
together with the type errors, each with its path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloudcircuit.errors import InputError
from cloudcircuit.policy.catalog import ACTION_PARAMS, RESOURCE_TYPES, ActionName
from cloudcircuit.providers import TargetSelector
from cloudcircuit.spend import CostBasis, Granularity, parse_dimensions

__all__ = [
    "SCOPE_DIMENSIONS",
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
]

RuleAction = Literal["throttle", "block"]
Severity = Literal["info", "warning", "critical"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

#: scope field -> the spend dimension it filters (spend.DIMENSIONS names)
SCOPE_DIMENSIONS: dict[str, str] = {
    "provider": "provider",
    "account": "sub_account",
    "service": "service",
    "region": "region",
}

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PolicyModel(BaseModel):
    """Base of every policy model: unknown keys are errors, validated values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ProblemsError(ValueError):
    """Several problems found by one validator, each with a path relative to the model.

    The policy loader splits it into one line per problem (``budgets[1].name: ...``).
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.problems))


def _check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must start with a letter or digit and contain only letters, "
            "digits, '_', '.', ':' or '-'"
        )
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_RE.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (letters, digits, '_'; "
            "no '$' or braces: write the name, not its value)"
        )
    return value


def _check_url(value: str, *, https_only: bool = False) -> str:
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must be an absolute {wanted} URL, got {value!r}")
    return value


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_WHAT = {"budgets": "budget", "sources": "source", "alerts": "alert sink"}


def duplicate_names(lists: Mapping[str, Sequence[object]]) -> list[tuple[str, str]]:
    """``budgets[3].name: budget name 'x' is already used by budgets[0]`` for each repeat.

    Used by the Policy validator and, on raw data, by the loader (so repeats are reported even
    when other fields fail and the Policy validator never runs).
    """
    problems: list[tuple[str, str]] = []
    for field_name, names in lists.items():
        what = _WHAT.get(field_name, field_name)
        first: dict[str, int] = {}
        for i, name in enumerate(names):
            if not isinstance(name, str):
                continue
            if name in first:
                problems.append(
                    (
                        f"{field_name}[{i}].name",
                        f"{what} name {name!r} is already used by {field_name}[{first[name]}]",
                    )
                )
            else:
                first[name] = i
    return problems


def _duplicates(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for name in names:
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    return dup


def _non_empty_strings(values: Sequence[str], what: str) -> list[str]:
    out = [v.strip() for v in values]
    if any(not v for v in out):
        raise ValueError(f"{what} must not contain empty strings")
    return out


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
        return _check_name(value, "source name")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _check_name(value, "source type")

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
        description="Provider names as in the billing data (FOCUS ProviderName, e.g. 'AWS'); "
        "matched case-insensitively.",
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
        return _non_empty_strings(value, "the list")

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
        ``service``, ``region``, ``tag:KEY``). A dimension the selector filters on but the
        scope lacks does not match: membership cannot be shown.
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
            if field_name == "provider":
                if value.casefold() not in {w.casefold() for w in wanted}:
                    return False
            elif value not in wanted:
                return False
        return all(scope.get(f"tag:{key}") == value for key, value in self.tags.items())


# -- detectors ----------------------------------------------------------------------------


class DetectorRule(PolicyModel):
    """What every detector has: whether it runs and what it asks for when it fires."""

    enabled: bool = Field(default=True, description="Run this detector.")
    action: RuleAction = Field(
        default="throttle", description="What the detector asks for when it fires."
    )


class SpikeSettings(DetectorRule):
    """Latest complete bucket against the mean of the history (0.3 check_anomaly_spike)."""

    multiplier: float = Field(
        default=1.5,
        gt=1,
        allow_inf_nan=False,
        description="Fires when latest > max(mean, min_baseline) * multiplier.",
    )
    min_baseline: NonNegativeFloat = Field(
        default=0.0, description="Floor of the baseline, so tiny scopes do not fire on cents."
    )


class RobustSettings(DetectorRule):
    """Median/MAD or percentile threshold (0.3 check_anomaly_robust): resists outliers."""

    enabled: bool = Field(default=False, description="Run this detector.")
    method: Literal["mad", "percentile"] = Field(
        default="mad", description="'mad' (median + z * MAD / 0.6745) or 'percentile'."
    )
    z_threshold: PositiveFloat = Field(default=3.5, description="MAD method: z multiplier.")
    min_mad: NonNegativeFloat = Field(
        default=0.0, description="MAD method: floor of the spread (avoids firing on flat series)."
    )
    percentile: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="Percentile method: quantile of the history used as threshold, in (0, 1).",
    )
    min_baseline: NonNegativeFloat = Field(default=0.0, description="Floor of the location.")


class BurnRateSettings(DetectorRule):
    """Latest bucket over the history mean (0.3 check_burn_rate)."""

    enabled: bool = Field(default=False, description="Run this detector.")
    hot_multiplier: float = Field(
        default=1.4,
        gt=1,
        allow_inf_nan=False,
        description="Fires when latest / mean >= hot_multiplier.",
    )


class ForecastSettings(DetectorRule):
    """Projects the period's total and fires when it reaches the budget amount."""

    method: Literal["linear", "run_rate"] = Field(
        default="run_rate",
        description="'linear': spend-to-date / elapsed * total (0.3); 'run_rate': spend-to-date "
        "+ mean of the last run_rate_buckets complete buckets * remaining buckets.",
    )
    breach_ratio: PositiveFloat = Field(
        default=1.0,
        description="Fires when the projected total reaches this share of the amount (0.9: "
        "warn when the month is on course to use 90% of the budget).",
    )
    run_rate_buckets: int = Field(
        default=7, ge=1, description="Complete buckets averaged by the run_rate method."
    )


class DetectorSettings(PolicyModel):
    """Which detectors run and how. Set at policy level; a budget may override any part.

    Detector modules add their own sub-model here as one more field with a default.
    """

    history: int = Field(
        default=28,
        ge=2,
        description="Points of history (complete buckets) the anomaly detectors look at.",
    )
    spike: SpikeSettings = Field(default_factory=SpikeSettings, description="Spike detector.")
    robust: RobustSettings = Field(
        default_factory=RobustSettings, description="Robust (MAD/percentile) anomaly detector."
    )
    burn_rate: BurnRateSettings = Field(
        default_factory=BurnRateSettings, description="Single-window burn-rate detector."
    )
    forecast: ForecastSettings = Field(
        default_factory=ForecastSettings, description="End-of-period forecast against budget."
    )

    def merged(self, override: DetectorSettings | None) -> DetectorSettings:
        """This object with every key ``override`` set explicitly taking precedence (deep)."""
        if override is None:
            return self
        merged: DetectorSettings = _merge(self, override)
        return merged


def _merge(base: PolicyModel, override: PolicyModel) -> Any:
    update: dict[str, Any] = {}
    for name in override.model_fields_set:
        new = getattr(override, name)
        old = getattr(base, name)
        if isinstance(new, PolicyModel) and isinstance(old, type(new)):
            update[name] = _merge(old, new)
        else:
            update[name] = new
    return base.model_copy(update=update)


# -- breaker / enforcement ----------------------------------------------------------------


class BreakerSettings(PolicyModel):
    """The scan circuit breaker: failed or incomplete scans in a row open it."""

    failure_threshold: int = Field(
        default=3, ge=1, description="Consecutive failed or incomplete scans that open it."
    )
    cooldown_scans: int = Field(
        default=2, ge=0, description="Scans it stays open after the failures stop."
    )


class MaxResources(PolicyModel):
    """Safety rail: a plan touching more resources than this is aborted before any action."""

    count: int = Field(default=25, ge=1, description="Most resources one plan may act on.")
    percent: float = Field(
        default=20.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Most resources one plan may act on, as a percent of those matched.",
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
        return _non_empty_strings(value, "the list")

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
        return _check_name(value, "provider")

    @model_validator(mode="after")
    def _check(self) -> ActionSpec:
        problems: list[tuple[str, str]] = []
        known = RESOURCE_TYPES.get(self.provider)
        if known is not None:
            for i, rtype in enumerate(self.resource_types):
                if rtype not in known:
                    hint = _suggest(rtype, known)
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
                hint = _suggest(name, specs)
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
            elif spec.minimum is not None and isinstance(value, int) and value < spec.minimum:
                problems.append((where, f"must be at least {spec.minimum}, got {value}"))
        if problems:
            raise ProblemsError(problems)
        return self

    def target(self) -> TargetSelector:
        """The resources this step targets, as a provider-neutral selector."""
        return self.selector.to_target(self.resource_types)


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
        return _check_name(value, "budget name")

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        try:
            dims = parse_dimensions(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if len(set(dims)) != len(dims):
            raise ValueError(f"names a dimension twice: {', '.join(_duplicates(dims))}")
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


# -- alerts -------------------------------------------------------------------------------


class SinkBase(PolicyModel):
    """What every alert sink has."""

    name: str = Field(description="Unique sink name.")
    min_severity: Severity = Field(
        default="warning", description="Send alerts of this severity and above."
    )
    dedup_minutes: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Suppress the same alert (budget, scope, action) for this long.",
    )
    timeout_seconds: PositiveFloat = Field(default=10.0, description="HTTP timeout per attempt.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries with backoff on failure.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "sink name")


class WebhookSinkConfig(SinkBase):
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is configured."""

    type: Literal["webhook"] = Field(description="Sink type.")
    url: str = Field(description="http(s) URL to POST to; ${VAR} is expanded from the environment.")
    secret_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the HMAC key "
        "(X-Cloudcircuit-Signature: sha256=<hex>).",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("secret_env")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return _check_env_name(value)


class SlackSinkConfig(SinkBase):
    """Slack incoming webhook (Block Kit message)."""

    type: Literal["slack"] = Field(description="Sink type.")
    webhook_url: str | None = Field(default=None, description="Incoming-webhook URL.")
    webhook_url_env: str | None = Field(
        default=None, description="Environment variable holding the incoming-webhook URL."
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, https_only=True)

    @field_validator("webhook_url_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return _check_env_name(value)

    @model_validator(mode="after")
    def _one_url(self) -> SlackSinkConfig:
        if (self.webhook_url is None) == (self.webhook_url_env is None):
            raise ValueError("give exactly one of 'webhook_url' and 'webhook_url_env'")
        return self


class PagerDutySinkConfig(SinkBase):
    """PagerDuty Events API v2."""

    type: Literal["pagerduty"] = Field(description="Sink type.")
    routing_key_env: str = Field(
        description="Environment variable holding the integration (routing) key."
    )
    url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint."
    )

    @field_validator("routing_key_env")
    @classmethod
    def _env(cls, value: str) -> str:
        checked = _check_env_name(value)
        assert checked is not None
        return checked

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


AlertSinkConfig = Annotated[
    WebhookSinkConfig | SlackSinkConfig | PagerDutySinkConfig, Field(discriminator="type")
]


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
        types = {s.type.casefold() for s in self.sources}
        if "focus" not in types:
            for i, budget in enumerate(self.budgets):
                for j, provider in enumerate(budget.scope.provider):
                    if provider.casefold() not in types:
                        problems.append(
                            (
                                f"budgets[{i}].scope.provider[{j}]",
                                f"no source reads provider {provider!r} (source types: "
                                f"{', '.join(sorted(types))})",
                            )
                        )
        if problems:
            raise ProblemsError(problems)
        return self

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
