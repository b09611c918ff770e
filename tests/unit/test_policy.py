"""Policy models: every validation rule, scope selection, detector merging, helpers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcircuit.errors import ConfigError
from cloudcircuit.policy import (
    RESOURCE_TYPES,
    ActionSpec,
    Budget,
    DetectorSettings,
    EnforcementSettings,
    Policy,
    ScopeSelector,
    SelectorSpec,
    SlackSinkConfig,
    WebhookSinkConfig,
    parse_policy,
)
from cloudcircuit.providers import Resource, TargetSelector
from cloudcircuit.spend import CostBasis, Granularity

BASE: dict[str, Any] = {
    "version": 1,
    "sources": [{"name": "demo", "type": "focus", "path": "/data/focus"}],
    "budgets": [{"name": "all", "period": "month", "amount": 1000}],
}


def policy_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def budget(**fields: Any) -> dict[str, Any]:
    return {"name": "b", "period": "month", "amount": 100, **fields}


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    """Validate through the real loader path (YAML text) and return {path: message}."""
    import yaml

    with pytest.raises(ConfigError) as info:
        parse_policy(yaml.safe_dump(data, sort_keys=False), source="p.yaml", env={})
    return {path: msg for path, msg in info.value.problems}


def problem(data: dict[str, Any], path: str) -> str:
    found = problems_of(data)
    assert path in found, f"{path} not in {found}"
    return found[path]


# -- the minimal policy and defaults --------------------------------------------------------


def test_minimal_policy_gets_documented_defaults() -> None:
    policy = Policy.model_validate(BASE)
    assert policy.version == 1
    assert policy.state == "sqlite:///.cloudcircuit/state.db"
    assert policy.defaults.currency == "USD"
    assert policy.defaults.cost_basis is CostBasis.BILLED
    assert policy.defaults.granularity is Granularity.DAY
    assert policy.defaults.lookback_days == 60
    assert policy.defaults.settle_hours == 24
    assert policy.breaker.failure_threshold == 3
    assert policy.breaker.cooldown_scans == 2
    assert policy.enforcement.protect_tag == "cloudcircuit:protect=true"
    assert policy.enforcement.max_resources.count == 25
    assert policy.enforcement.max_resources.percent == 20.0
    assert policy.detectors.history == 28
    assert policy.detectors.spike.enabled and policy.detectors.spike.multiplier == 1.5
    assert policy.detectors.forecast.enabled and policy.detectors.forecast.action == "throttle"
    b = policy.budgets[0]
    assert b.warning_ratio == 0.9
    assert b.group_by == [] and b.throttle == [] and b.block == [] and not b.fail_closed
    assert policy.currency_for(b) == "USD"
    assert policy.alerts == []


def test_models_are_frozen() -> None:
    policy = Policy.model_validate(BASE)
    with pytest.raises(ValueError, match="frozen"):
        policy.budgets[0].amount = 5  # type: ignore[misc]


# -- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -3, -0.01])
def test_amount_must_be_positive(amount: float) -> None:
    data = policy_with(budgets=[budget(amount=amount)])
    assert problem(data, "budgets[0].amount").startswith("must be greater than 0")


@pytest.mark.parametrize("amount", [float("inf"), float("nan"), float("-inf")])
def test_amount_must_be_finite(amount: float) -> None:
    data = policy_with(budgets=[budget(amount=amount)])
    assert "finite" in problem(data, "budgets[0].amount")


@pytest.mark.parametrize(
    ("ratio", "message"),
    [(0, "must be greater than 0"), (1.5, "must be at most 1"), (-1, "must be greater than 0")],
)
def test_warning_ratio_in_zero_one(ratio: float, message: str) -> None:
    data = policy_with(budgets=[budget(warning_ratio=ratio)])
    assert problem(data, "budgets[0].warning_ratio").startswith(message)


def test_warning_ratio_one_is_allowed() -> None:
    policy = Policy.model_validate(policy_with(budgets=[budget(warning_ratio=1)]))
    assert policy.budgets[0].warning_ratio == 1.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("count", 0, "must be at least 1"),
        ("percent", 0, "must be greater than 0"),
        ("percent", 100.5, "must be at most 100"),
    ],
)
def test_max_resources_bounds(field: str, value: float, message: str) -> None:
    data = policy_with(enforcement={"max_resources": {field: value}})
    assert problem(data, f"enforcement.max_resources.{field}").startswith(message)


def test_max_resources_percent_100_allowed() -> None:
    policy = Policy.model_validate(policy_with(enforcement={"max_resources": {"percent": 100}}))
    assert policy.enforcement.max_resources.percent == 100


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("defaults.lookback_days", 0, "must be at least 1"),
        ("defaults.settle_hours", -1, "must be at least 0"),
        ("breaker.failure_threshold", 0, "must be at least 1"),
        ("breaker.cooldown_scans", -1, "must be at least 0"),
        ("detectors.history", 1, "must be at least 2"),
        ("detectors.spike.multiplier", 1, "must be greater than 1"),
        ("detectors.spike.min_baseline", -1, "must be at least 0"),
        ("detectors.robust.z_threshold", 0, "must be greater than 0"),
        ("detectors.robust.percentile", 1, "must be less than 1"),
        ("detectors.robust.min_mad", -0.5, "must be at least 0"),
        ("detectors.burn_rate.hot_multiplier", 0.9, "must be greater than 1"),
        ("detectors.forecast.breach_ratio", 0, "must be greater than 0"),
        ("detectors.forecast.run_rate_buckets", 0, "must be at least 1"),
    ],
)
def test_numeric_bounds_of_settings(path: str, value: float, message: str) -> None:
    data = copy.deepcopy(BASE)
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    assert problem(data, path).startswith(message)


def test_literals_are_checked() -> None:
    data = policy_with(
        budgets=[budget(period="week")],
        detectors={"robust": {"method": "zscore"}, "spike": {"action": "stop"}},
        defaults={"granularity": "minute", "cost_basis": "list"},
    )
    found = problems_of(data)
    assert found["budgets[0].period"].startswith("must be 'day' or 'month', got the text 'week'")
    assert "'mad' or 'percentile'" in found["detectors.robust.method"]
    assert "'throttle' or 'block'" in found["detectors.spike.action"]
    assert "'hour', 'day' or 'month'" in found["defaults.granularity"]
    assert "'billed' or 'effective'" in found["defaults.cost_basis"]


def test_currency_codes() -> None:
    data = policy_with(defaults={"currency": "usd"}, budgets=[budget(currency="EURO")])
    found = problems_of(data)
    assert "ISO 4217" in found["defaults.currency"]
    assert "ISO 4217" in found["budgets[0].currency"]
    policy = Policy.model_validate(policy_with(budgets=[budget(currency="EUR")]))
    assert policy.currency_for(policy.budgets[0]) == "EUR"


# -- names and cross-field rules -------------------------------------------------------------


def test_budget_names_unique() -> None:
    data = policy_with(budgets=[budget(name="x"), budget(name="y"), budget(name="x")])
    assert problem(data, "budgets[2].name") == (
        "budget name 'x' is already used by budgets[0] (line 13)"
    )


def test_budget_names_unique_reported_with_other_errors() -> None:
    data = policy_with(budgets=[budget(name="x"), budget(name="x", amount=-1)])
    found = problems_of(data)
    assert "budgets[1].amount" in found
    assert "already used by budgets[0]" in found["budgets[1].name"]


def test_source_and_sink_names_unique() -> None:
    sink = {"name": "hook", "type": "webhook", "url": "https://example.com/h"}
    data = policy_with(
        sources=[
            {"name": "s", "type": "focus", "path": "a"},
            {"name": "s", "type": "focus", "path": "b"},
        ],
        alerts=[sink, sink],
    )
    found = problems_of(data)
    assert "source name 's'" in found["sources[1].name"]
    assert "alert sink name 'hook'" in found["alerts[1].name"]


def test_duplicate_names_on_programmatic_construction() -> None:
    with pytest.raises(ValueError, match="budget name 'x' is already used"):
        Policy.model_validate(policy_with(budgets=[budget(name="x"), budget(name="x")]))


@pytest.mark.parametrize("name", ["", "has space", "-lead", "a/b"])
def test_bad_budget_names(name: str) -> None:
    data = policy_with(budgets=[budget(name=name)])
    assert "budget name" in problem(data, "budgets[0].name")


def test_at_least_one_budget_and_source() -> None:
    found = problems_of(policy_with(budgets=[], sources=[]))
    assert found["budgets"].startswith("must have at least 1 item")
    assert found["sources"].startswith("must have at least 1 item")


def test_budget_provider_needs_a_source() -> None:
    data = policy_with(
        sources=[{"name": "a", "type": "aws"}],
        budgets=[budget(scope={"provider": ["aws", "gcp"]})],
    )
    found = problems_of(data)
    assert "budgets[0].scope.provider[0]" not in found
    assert found["budgets[0].scope.provider[1]"].startswith("no source reads provider 'gcp'")


def test_billing_provider_names_map_to_sources() -> None:
    data = policy_with(
        sources=[{"name": "a", "type": "aws"}, {"name": "z", "type": "azure"}],
        budgets=[budget(scope={"provider": ["AWS", "Microsoft", "Google Cloud", "Oracle"]})],
    )
    found = problems_of(data)
    assert sorted(found) == ["budgets[0].scope.provider[2]", "budgets[0].scope.provider[3]"]
    assert "'Google Cloud'" in found["budgets[0].scope.provider[2]"]


def test_focus_source_may_carry_any_provider() -> None:
    policy = Policy.model_validate(policy_with(budgets=[budget(scope={"provider": ["GCP"]})]))
    assert policy.budgets[0].scope.provider == ["GCP"]


def test_source_path_rules() -> None:
    data = policy_with(
        sources=[
            {"name": "f", "type": "focus"},
            {"name": "a", "type": "aws", "path": "x"},
            {"name": "b", "type": "bad type"},
        ]
    )
    found = problems_of(data)
    assert "needs a path" in found["sources[0].path"]
    assert "only 'focus' sources have a path" in found["sources[1].path"]
    assert "source type" in found["sources[2].type"]


def test_source_settings_pass_through() -> None:
    data = policy_with(sources=[{"name": "ce", "type": "aws", "settings": {"region": "eu"}}])
    policy = Policy.model_validate(data)
    assert policy.sources[0].settings == {"region": "eu"}
    assert policy.source("ce").type == "aws"
    assert policy.source_providers() == ["aws"]
    with pytest.raises(KeyError):
        policy.source("nope")


def test_group_by_dimensions_validated_and_normalized() -> None:
    policy = Policy.model_validate(policy_with(budgets=[budget(group_by=["account", "tag:team"])]))
    assert policy.budgets[0].group_by == ["sub_account", "tag:team"]
    found = problems_of(policy_with(budgets=[budget(group_by=["servise"])]))
    assert "unknown dimension 'servise'" in found["budgets[0].group_by"]
    found = problems_of(policy_with(budgets=[budget(group_by=["tag:"])]))
    assert "needs a tag key" in found["budgets[0].group_by"]
    found = problems_of(policy_with(budgets=[budget(group_by=["service", "service"])]))
    assert "twice" in found["budgets[0].group_by"]


def test_state_url_rules() -> None:
    assert "must be a URL" in problem(policy_with(state="state.db"), "state")
    assert "three slashes" in problem(policy_with(state="sqlite://x.db"), "state")
    for url in ("memory://", "redis://127.0.0.1:6379/0", "dynamodb://table"):
        assert Policy.model_validate(policy_with(state=url)).state == url


# -- enforcement ----------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["nokey", "=true", "key=", " = "])
def test_protect_tag_must_be_key_value(tag: str) -> None:
    data = policy_with(enforcement={"protect_tag": tag})
    assert "KEY=VALUE" in problem(data, "enforcement.protect_tag")


def test_protect_tag_parsed() -> None:
    settings_ = EnforcementSettings(protect_tag="do-not-touch=yes")
    assert settings_.protect == ("do-not-touch", "yes")
    assert EnforcementSettings().protect == ("cloudcircuit:protect", "true")


def action(**fields: Any) -> dict[str, Any]:
    return {"action": "stop", "provider": "aws", **fields}


def test_tag_action_needs_key_and_value() -> None:
    data = policy_with(budgets=[budget(throttle=[action(action="tag")])])
    found = problems_of(data)
    assert found["budgets[0].throttle[0].params.key"].startswith("is required by action 'tag'")
    assert found["budgets[0].throttle[0].params.value"].startswith("is required by action 'tag'")
    data = policy_with(
        budgets=[budget(throttle=[action(action="tag", params={"key": "", "value": 3})])]
    )
    found = problems_of(data)
    assert found["budgets[0].throttle[0].params.key"].startswith("must not be empty")
    assert "expected a string" in found["budgets[0].throttle[0].params.value"]


def test_unknown_action_param_suggests() -> None:
    data = policy_with(
        budgets=[budget(block=[action(action="tag", params={"key": "k", "valeu": "v"})])]
    )
    found = problems_of(data)
    assert "did you mean 'value'?" in found["budgets[0].block[0].params.valeu"]
    data = policy_with(budgets=[budget(block=[action(params={"force": True})])])
    assert "allowed: none" in problem(data, "budgets[0].block[0].params.force")


def test_unknown_action_name() -> None:
    data = policy_with(budgets=[budget(block=[action(action="delete")])])
    assert "'tag', 'stop' or 'scale_down'" in problem(data, "budgets[0].block[0].action")


def test_resource_types_known_per_provider() -> None:
    data = policy_with(
        budgets=[budget(block=[action(resource_types=["ec2:instance", "ec2:instanse"])])]
    )
    found = problems_of(data)
    assert "budgets[0].block[0].resource_types[0]" not in found
    msg = found["budgets[0].block[0].resource_types[1]"]
    assert "did you mean 'ec2:instance'?" in msg


def test_action_must_apply_to_resource_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        RESOURCE_TYPES,  # type: ignore[arg-type]
        "testcloud",
        {"vm": frozenset({"tag", "stop"}), "pool": frozenset({"tag", "scale_down"})},
    )
    data = policy_with(
        budgets=[budget(block=[action(provider="testcloud", resource_types=["vm", "pool"])])]
    )
    found = problems_of(data)
    assert "budgets[0].block[0].resource_types[0]" not in found
    msg = found["budgets[0].block[0].resource_types[1]"]
    assert msg.startswith("action 'stop' does not apply to 'pool' (it supports: scale_down, tag)")


def test_every_known_aws_type_supports_every_action() -> None:
    """The AWS enforcer brings any type to zero for stop and scale_down alike."""
    for rtype, actions in RESOURCE_TYPES["aws"].items():
        assert actions == {"tag", "stop", "scale_down"}, rtype
        ActionSpec(
            action="tag", provider="aws", resource_types=[rtype], params={"key": "k", "value": "v"}
        )


def test_unknown_provider_types_not_checked() -> None:
    spec = ActionSpec(action="stop", provider="gcp", resource_types=["compute:instance"])
    assert spec.resource_types == ["compute:instance"]


def test_action_target_selector() -> None:
    spec = ActionSpec(
        action="scale_down",
        provider="aws",
        resource_types=["autoscaling:group"],
        selector=SelectorSpec(tags={"team": "ml"}, regions=["us-east-1"], accounts=["1"]),
    )
    target = spec.target()
    assert target == TargetSelector(
        resource_types=("autoscaling:group",),
        tags={"team": "ml"},
        regions=("us-east-1",),
        accounts=("1",),
    )
    assert spec.selector.to_target() == TargetSelector(
        tags={"team": "ml"}, regions=("us-east-1",), accounts=("1",)
    )
    hit = Resource(
        "aws", "autoscaling:group", "g", region="us-east-1", account="1", tags={"team": "ml"}
    )
    miss = Resource(
        "aws", "autoscaling:group", "g", region="us-east-1", account="1", tags={"team": "web"}
    )
    assert target.matches(hit) and not target.matches(miss)


def test_budget_actions_and_enforcement_providers() -> None:
    policy = Policy.model_validate(
        policy_with(
            budgets=[
                budget(
                    throttle=[
                        action(action="tag", provider="aws", params={"key": "a", "value": "b"})
                    ],
                    block=[action(provider="gcp")],
                )
            ]
        )
    )
    b = policy.budgets[0]
    assert [a.action for a in b.actions("throttle")] == ["tag"]
    assert [a.provider for a in b.actions("block")] == ["gcp"]
    assert policy.enforcement_providers() == ["aws", "gcp"]
    assert policy.budget("b") is b
    with pytest.raises(KeyError):
        policy.budget("missing")


# -- alert sinks ----------------------------------------------------------------------------


def test_alert_sinks_discriminated() -> None:
    policy = Policy.model_validate(
        policy_with(
            alerts=[
                {
                    "name": "w",
                    "type": "webhook",
                    "url": "http://127.0.0.1:9/h",
                    "secret_env": "HOOK_SECRET",
                    "headers": {"X-A": "b"},
                },
                {"name": "s", "type": "slack", "webhook_url_env": "SLACK_URL"},
                {
                    "name": "p",
                    "type": "pagerduty",
                    "routing_key_env": "PD_KEY",
                    "min_severity": "critical",
                },
            ]
        )
    )
    w, s, p = policy.alerts
    assert isinstance(w, WebhookSinkConfig) and w.secret_env == "HOOK_SECRET"
    assert w.min_severity == "warning" and w.dedup_minutes == 60
    assert isinstance(s, SlackSinkConfig) and s.webhook_url is None
    assert p.type == "pagerduty" and p.url == "https://events.pagerduty.com/v2/enqueue"
    assert p.min_severity == "critical"


def test_alert_sink_errors() -> None:
    data = policy_with(
        alerts=[
            {"name": "a", "type": "email"},
            {"name": "b"},
            {"name": "c", "type": "webhook", "url": "ftp://x"},
            {"name": "d", "type": "webhook", "url": "https://x", "secret_env": "${SECRET}"},
            {"name": "e", "type": "slack"},
            {"name": "f", "type": "slack", "webhook_url": "http://hooks.slack.com/x"},
            {"name": "g", "type": "pagerduty"},
            {"name": "h", "type": "webhook", "url": "https://x", "min_severity": "page"},
        ]
    )
    found = problems_of(data)
    assert found["alerts[0]"].startswith("unknown type 'email'")
    assert "needs a 'type' key" in found["alerts[1]"]
    assert found["alerts[2].url"].startswith(
        "must be an absolute http:// or https:// URL, got scheme 'ftp'"
    )
    assert "environment variable SECRET is not set" in found["alerts[3].secret_env"]
    assert "exactly one of" in found["alerts[4]"]
    assert "https:// URL, got scheme 'http'" in found["alerts[5].webhook_url"]
    assert found["alerts[6].routing_key_env"].startswith("is required")
    assert "'info', 'warning' or 'critical'" in found["alerts[7].min_severity"]


def test_secret_env_must_be_a_name_not_a_value() -> None:
    with pytest.raises(ValueError, match="not an environment variable name"):
        WebhookSinkConfig(name="w", type="webhook", url="https://x", secret_env="$HOME")


# -- scope selectors ------------------------------------------------------------------------


def test_scope_to_filters() -> None:
    scope = ScopeSelector(
        provider=["AWS"],
        account=["1", "2"],
        service=["S3"],
        region=["eu"],
        tags={"team": "ml", "env": "prod"},
    )
    assert scope.to_filters() == {
        "provider": ("AWS",),
        "sub_account": ("1", "2"),
        "service": ("S3",),
        "region": ("eu",),
        "tag:team": ("ml",),
        "tag:env": ("prod",),
    }
    assert ScopeSelector().to_filters() == {}
    assert ScopeSelector().is_empty and not scope.is_empty


def test_scope_matches_examples() -> None:
    scope = ScopeSelector(provider=["AWS"], account=["222"], tags={"team": "ml"})
    row = {"provider": "AWS", "sub_account": "222", "service": "EC2", "tag:team": "ml"}
    assert scope.matches(row)
    via_alias = {k: v for k, v in row.items() if k != "sub_account"} | {"account": "222"}
    assert scope.matches(via_alias)
    assert not scope.matches({**row, "tag:team": "web"})
    assert scope.matches({**row, "provider": "aws"})  # provider names ignore case
    assert not scope.matches({**row, "provider": "Microsoft"})
    assert not scope.matches({**row, "sub_account": "111"})
    missing_dim = dict(row)
    del missing_dim["sub_account"]
    assert not scope.matches(missing_dim)
    assert ScopeSelector().matches({})


def test_scope_rejects_empty_values() -> None:
    data = policy_with(budgets=[budget(scope={"service": [""], "tags": {"": "x"}})])
    found = problems_of(data)
    assert "empty" in found["budgets[0].scope.service"]
    assert "empty" in found["budgets[0].scope.tags"]


_VALUES = st.sampled_from(["a", "b", "A"])
_ROW_VALUES = st.sampled_from(["a", "b", "A", ""])
_SCOPE_FIELDS = {
    "provider": "provider",
    "account": "sub_account",
    "service": "service",
    "region": "region",
}


@st.composite
def scopes_and_rows(draw: st.DrawFn) -> tuple[ScopeSelector, dict[str, str]]:
    fields = {name: draw(st.lists(_VALUES, max_size=2, unique=True)) for name in _SCOPE_FIELDS}
    tags = draw(st.dictionaries(st.sampled_from(["team", "env"]), _VALUES, max_size=2))
    row = {dim: draw(_ROW_VALUES) for dim in _SCOPE_FIELDS.values()}
    for key in ("team", "env"):
        if draw(st.booleans()):
            row[f"tag:{key}"] = draw(_ROW_VALUES)
    return ScopeSelector(**fields, tags=tags), row


def _filters_accept(filters: dict[str, tuple[str, ...]], row: dict[str, str]) -> bool:
    """What the FOCUS source's WHERE clause does: exact values, the provider without case."""

    def accepts(dim: str, allowed: tuple[str, ...]) -> bool:
        value = row.get(dim)
        if dim == "provider" and value is not None:
            return value.casefold() in {a.casefold() for a in allowed}
        return value in allowed

    return all(accepts(dim, allowed) for dim, allowed in filters.items())


@settings(max_examples=200, deadline=None)
@given(scopes_and_rows())
def test_matches_agrees_with_to_filters(case: tuple[ScopeSelector, dict[str, str]]) -> None:
    """A row passes the source filters exactly when the selector matches it."""
    scope, row = case
    assert scope.matches(row) == _filters_accept(scope.to_filters(), row)


@settings(max_examples=100, deadline=None)
@given(scopes_and_rows())
def test_empty_selector_matches_everything(case: tuple[ScopeSelector, dict[str, str]]) -> None:
    _, row = case
    assert ScopeSelector().matches(row)


# -- detectors ------------------------------------------------------------------------------


def test_budget_detector_override_is_a_deep_merge() -> None:
    policy = Policy.model_validate(
        policy_with(
            detectors={"history": 14, "spike": {"multiplier": 2.0}, "robust": {"enabled": True}},
            budgets=[
                budget(detectors={"spike": {"action": "block"}, "history": 21}),
                budget(name="c"),
            ],
        )
    )
    merged = policy.detectors_for(policy.budgets[0])
    assert merged.history == 21
    assert merged.spike.action == "block" and merged.spike.multiplier == 2.0
    assert merged.robust.enabled
    plain = policy.detectors_for(policy.budget("c"))
    assert plain == policy.detectors
    assert plain.spike.action == "throttle"


def test_detector_settings_defaults() -> None:
    d = DetectorSettings()
    assert (d.robust.enabled, d.robust.method, d.robust.z_threshold) == (False, "mad", 3.5)
    assert (d.robust.percentile, d.robust.min_mad, d.robust.min_baseline) == (0.95, 0, 0)
    assert (d.burn_rate.enabled, d.burn_rate.hot_multiplier) == (False, 1.4)
    assert d.forecast.method == "run_rate" and d.forecast.breach_ratio == 1.0


def test_budget_model_direct() -> None:
    b = Budget(name="x", period="day", amount=5)
    assert b.scope.is_empty
    with pytest.raises(ValueError):
        Budget(name="x", period="day", amount=0)


def test_sink_env_names() -> None:
    policy = Policy.model_validate(
        policy_with(
            alerts=[
                {"name": "w", "type": "webhook", "url": "https://x", "secret_env": "A"},
                {"name": "w2", "type": "webhook", "url": "https://x"},
                {"name": "s", "type": "slack", "webhook_url_env": "B"},
                {"name": "s2", "type": "slack", "webhook_url": "https://hooks.example/x"},
                {"name": "p", "type": "pagerduty", "routing_key_env": "C"},
            ]
        )
    )
    assert [a.env_names() for a in policy.alerts] == [["A"], [], ["B"], [], ["C"]]


@pytest.mark.parametrize(
    ("url", "got"),
    [
        ("", "an empty string"),
        ("hooks.example.com/x", "no scheme"),
        ("https:///path-only", "no host name"),
    ],
)
def test_webhook_url_problems_do_not_echo_the_url(url: str, got: str) -> None:
    data = policy_with(alerts=[{"name": "w", "type": "webhook", "url": url}])
    message = problem(data, "alerts[0].url")
    assert message.startswith(f"must be an absolute http:// or https:// URL, got {got}")
    if url:
        assert url not in message


def test_action_provider_is_the_package_name() -> None:
    data = policy_with(
        budgets=[budget(block=[action(provider="AWS"), action(provider="Microsoft")])]
    )
    found = problems_of(data)
    assert found["budgets[0].block[0].provider"].startswith(
        "write the provider's package name ('aws'), not 'AWS'"
    )
    assert "('azure')" in found["budgets[0].block[1].provider"]


def test_merge_is_deep_for_detector_settings_defined_elsewhere() -> None:
    """Detector modules may add plain pydantic sub-models to DetectorSettings."""
    from pydantic import BaseModel, ConfigDict, Field

    class Seasonal(BaseModel):
        model_config = ConfigDict(extra="forbid")
        season: int = 7
        z_threshold: float = 4.0

    class Extended(DetectorSettings):
        seasonal: Seasonal = Field(default_factory=Seasonal)

    base = Extended.model_validate({"seasonal": {"season": 24}, "history": 40})
    override = Extended.model_validate({"seasonal": {"z_threshold": 6.0}})
    merged = base.merged(override)
    assert isinstance(merged, Extended)
    assert (merged.seasonal.season, merged.seasonal.z_threshold) == (24, 6.0)
    assert merged.history == 40


def test_scope_provider_matches_ignoring_case() -> None:
    from cloudcircuit.policy import ScopeSelector

    selector = ScopeSelector(provider=["aws"])
    assert selector.matches({"provider": "AWS"})
    assert not selector.matches({"provider": "Microsoft"})
    assert not ScopeSelector(service=["s3"]).matches({"service": "S3"})  # only provider folds


def test_burn_windows_must_be_whole_buckets_at_validation_time() -> None:
    """A window a scan could not evaluate (not a whole number of the series' buckets) is a
    policy problem with its path, not a failure at scan time."""
    daily = {"burn_windows": {"windows": [{"long": "36h", "short": "1d", "factor": 2}]}}
    message = problem(policy_with(detectors=daily), "detectors.burn_windows.windows[0].long")
    assert "1d12h" in message or "36h" in message
    assert "day buckets" in message
    per_budget = policy_with(
        budgets=[budget(detectors={"burn_windows": {"windows": [{"long": "2d", "short": "6h",
                                                                   "factor": 3}]}})]
    )  # fmt: skip
    assert "budgets[0].detectors.burn_windows.windows[0].short" in problems_of(per_budget)
    hourly = policy_with(defaults={"granularity": "hour"}, detectors=daily)
    assert Policy.model_validate(hourly).detectors.burn_windows.windows[0].long == "36h"
