"""Loading policy files: YAML errors with positions, ${VAR} expansion, paths, the JSON Schema,
and the shipped example."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cloudcircuit.errors import ConfigError, InputError
from cloudcircuit.policy import (
    Policy,
    WebhookSinkConfig,
    interpolate,
    load_policy,
    parse_policy,
    policy_json_schema,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.yaml"

GOOD = """\
version: 1
sources:
  - name: demo
    type: focus
    path: data/focus
budgets:
  - name: all
    period: month
    amount: 1000
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(write(tmp_path, text), env=env or {})
    return dict(info.value.problems)


# -- files and YAML -------------------------------------------------------------------------


def test_good_file_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, GOOD))
    assert isinstance(policy, Policy)
    assert policy.budgets[0].amount == 1000.0


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="is empty") as info:
        load_policy(write(tmp_path, text))
    assert info.value.source == str(tmp_path / "policy.yaml")
    assert isinstance(info.value, InputError)


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    text = GOOD + "  - name: x\n    period: [month\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}:12:")
    assert "malformed YAML" in message


def test_malformed_yaml_bad_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n  sources: x\n")
    with pytest.raises(ConfigError, match=r"policy\.yaml:2:\d+: malformed YAML"):
        load_policy(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mapping .* at the top level, got a list"):
        load_policy(write(tmp_path, "- a\n- b\n"))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_policy(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"version: 1\nname: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_policy(path)


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "    amount: 2000\n")
    assert found["budgets[0].amount"] == "duplicate key 'amount' (line 10)"


# -- translation of validation errors -------------------------------------------------------


def test_every_problem_reported_with_path_and_line(tmp_path: Path) -> None:
    text = GOOD.replace("amount: 1000", "amount: 0\n    amout: 5\n    period: week")
    text = text.replace("    period: month\n", "")
    found = problems(tmp_path, text)
    assert found["budgets[0].amount"] == "must be greater than 0 (line 8)"
    assert found["budgets[0].amout"] == "unknown key (did you mean 'amount'?) (line 9)"
    assert found["budgets[0].period"].startswith("must be 'day' or 'month', got the text 'week'")


def test_unknown_key_without_close_match_lists_allowed(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "colour: red\n")
    assert found["colour"].startswith("unknown key (allowed: version, sources, state,")


def test_unknown_key_in_tagged_union_member(tmp_path: Path) -> None:
    text = GOOD + "alerts:\n  - name: w\n    type: webhook\n    url: https://x\n    secrt_env: S\n"
    found = problems(tmp_path, text)
    assert found["alerts[0].secrt_env"] == "unknown key (did you mean 'secret_env'?) (line 14)"


def test_unknown_key_in_nested_detector(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "detectors:\n  spike:\n    multiplyer: 2\n")
    assert found["detectors.spike.multiplyer"].startswith(
        "unknown key (did you mean 'multiplier'?)"
    )


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        ("    amount: 12k\n", "budgets[1].amount", "expected a number, got the text '12k'"),
        (
            "    amount: 5\n    fail_closed: maybe\n",
            "budgets[1].fail_closed",
            "expected true or false, got the text 'maybe'",
        ),
        (
            "    amount: 5\n    scope: [a]\n",
            "budgets[1].scope",
            "expected a mapping (key: value), got a list",
        ),
        (
            "    amount: 5\n    throttle: {action: tag}\n",
            "budgets[1].throttle",
            "expected a list, got a mapping",
        ),
        (
            "    amount: 5\n    scope: {account: [123456789012]}\n",
            "budgets[1].scope.account[0]",
            "expected a string, got the number 123456789012 (quote it: '123456789012')",
        ),
        (
            "    amount: 5\n    scope: {tags: {on: yes}}\n",
            "budgets[1].scope.tags.on",
            "expected a string, got true (quote it: 'yes')",
        ),
    ],
)
def test_wrong_types_say_what_was_expected(
    tmp_path: Path, snippet: str, path: str, message: str
) -> None:
    text = GOOD + "  - name: two\n    period: day\n" + snippet
    found = problems(tmp_path, text)
    assert found[path].startswith(message), found


def test_wrong_type_for_whole_section(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "enforcement: strict\n")
    assert found["enforcement"].startswith("expected a mapping (key: value), got the text 'strict'")
    found = problems(tmp_path, GOOD.replace("budgets:\n", "budgets: 3\nx:\n"))
    assert found["budgets"].startswith("expected a list, got the number 3")


def test_error_message_renders_count_and_lines(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("amount: 1000", "amount: -1\n    warning_ratio: 2"))
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    text = str(info.value)
    assert text.splitlines()[0] == f"{path}: 2 problems"
    assert "  budgets[0].amount: must be greater than 0 (line 9)" in text
    assert "  budgets[0].warning_ratio: must be at most 1 (line 10)" in text


# -- ${VAR} ---------------------------------------------------------------------------------


def test_interpolation_with_env_default_and_escape(tmp_path: Path) -> None:
    text = (
        GOOD.replace("path: data/focus", 'path: "${DATA:-fallback}/x"')
        + "alerts:\n  - name: w\n    type: webhook\n    url: ${HOOK}\n"
        + '    headers: {X-Price: "$$5", "${KEY}": v}\n'
    )
    policy = load_policy(write(tmp_path, text), env={"HOOK": "https://h.example/in"})
    sink = policy.alerts[0]
    assert isinstance(sink, WebhookSinkConfig)
    assert sink.url == "https://h.example/in"
    assert sink.headers == {"X-Price": "$5", "${KEY}": "v"}  # keys are not expanded
    assert policy.sources[0].path == str(tmp_path / "fallback" / "x")
    policy = load_policy(write(tmp_path, text), env={"HOOK": "https://h", "DATA": "/abs"})
    assert policy.sources[0].path == "/abs/x"


def test_missing_variable_is_reported_once_with_path(tmp_path: Path) -> None:
    text = GOOD + "alerts:\n  - name: w\n    type: webhook\n    url: ${HOOK_URL}\n"
    found = problems(tmp_path, text)
    assert found == {
        "alerts[0].url": "environment variable HOOK_URL is not set (no default given) (line 13)"
    }


def test_interpolate_function_raises_without_collector() -> None:
    assert interpolate({"a": ["${X}"]}, {"X": "1"}) == {"a": ["1"]}
    with pytest.raises(ConfigError, match=r"a\[0\]: environment variable X is not set"):
        interpolate({"a": ["${X}"]}, {})


def test_interpolation_uses_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC_TEST_DATA", "/from/env")
    path = write(tmp_path, GOOD.replace("data/focus", "${CC_TEST_DATA}"))
    assert load_policy(path).sources[0].path == "/from/env"


# -- paths ----------------------------------------------------------------------------------


def test_relative_paths_resolve_against_policy_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(sub, GOOD + 'state: "sqlite:///../state/s.db"\n')
    monkeypatch.chdir(ROOT)
    policy = load_policy(path)
    assert policy.sources[0].path == str(sub / "data" / "focus")
    assert policy.state == f"sqlite:///{tmp_path / 'state' / 's.db'}"


def test_absolute_and_non_file_urls_untouched(tmp_path: Path) -> None:
    for state in ("sqlite:////var/lib/cc.db", "memory://", "redis://127.0.0.1:6379/0"):
        text = GOOD.replace("data/focus", "/srv/focus/*.parquet") + f'state: "{state}"\n'
        policy = load_policy(write(tmp_path, text))
        assert policy.state == state
        assert policy.sources[0].path == "/srv/focus/*.parquet"


def test_parse_policy_base_dir() -> None:
    policy = parse_policy(GOOD, base_dir="/base")
    assert policy.sources[0].path == "/base/data/focus"
    assert policy.state == "sqlite:////base/.cloudcircuit/state.db"


# -- JSON Schema ----------------------------------------------------------------------------


def test_json_schema_describes_the_policy() -> None:
    schema = policy_json_schema()
    assert schema["title"] == "cloudcircuit policy"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"sources", "budgets"}
    budget = schema["$defs"]["Budget"]
    assert budget["additionalProperties"] is False
    assert budget["properties"]["amount"]["exclusiveMinimum"] == 0
    assert "greater than 0" in budget["properties"]["amount"]["description"]
    assert budget["properties"]["period"]["enum"] == ["day", "month"]
    alerts = schema["properties"]["alerts"]["items"]
    assert alerts["discriminator"]["propertyName"] == "type"
    assert set(alerts["discriminator"]["mapping"]) == {"webhook", "slack", "pagerduty"}
    json.dumps(schema)  # serializable


def test_json_schema_accepts_the_example_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = policy_json_schema()
    data = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(data, schema)
    data["budgets"][0]["amout"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


# -- the shipped example --------------------------------------------------------------------


def test_example_policy_validates_and_matches_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDCIRCUIT_DEMO_DATA", raising=False)
    policy = load_policy(EXAMPLE)
    assert [s.type for s in policy.sources] == ["focus"]
    assert policy.sources[0].name == "demo"
    assert policy.sources[0].path == str(ROOT / "out" / "demo-data")
    assert policy.state == f"sqlite:///{ROOT / 'out' / 'state.db'}"
    ml = policy.budget("ml-training")
    assert (ml.period, ml.amount) == ("month", 12000)
    assert ml.scope.to_filters() == {"sub_account": ("222222222222",), "tag:team": ("ml",)}
    ml_detectors = policy.detectors_for(ml)
    assert ml_detectors.spike.action == "block" and ml_detectors.spike.enabled
    assert ml_detectors.robust.action == "block" and ml_detectors.robust.enabled
    assert [(a.action, tuple(a.resource_types)) for a in ml.block] == [
        ("scale_down", ("autoscaling:group",)),
        ("stop", ("ec2:instance",)),
    ]
    assert all(a.selector.tags == {"team": "ml"} for a in ml.block)
    assert [a.action for a in ml.throttle] == ["tag"]
    platform = policy.budget("platform-services")
    assert (platform.period, platform.amount) == ("month", 20000)
    assert platform.scope.account == ["111111111111"]
    assert platform.scope.service == ["Amazon Elastic Container Service"]
    forecast = policy.detectors_for(platform).forecast
    assert forecast.enabled and forecast.method == "run_rate" and forecast.action == "throttle"
    storage = policy.budget("data-storage")
    assert storage.scope.service == ["Amazon Simple Storage Service"]
    assert (storage.period, storage.amount) == ("month", 6000)
    assert policy.enforcement.protect == ("cloudcircuit:protect", "true")
    assert policy.enforcement.max_resources.count == 25
    assert policy.enforcement.max_resources.percent == 50
    (sink,) = policy.alerts
    assert sink.type == "webhook" and sink.min_severity == "warning"
    assert isinstance(sink, WebhookSinkConfig) and sink.secret_env


def test_example_policy_demo_data_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDCIRCUIT_DEMO_DATA", os.fspath(Path("/tmp/elsewhere")))
    assert load_policy(EXAMPLE).sources[0].path == "/tmp/elsewhere"


def test_every_example_validates() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        load_policy(path, env={})


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.yaml:10:1: malformed YAML: .*single document"):
        load_policy(write(tmp_path, GOOD + "---\nversion: 1\n"))


def test_tabs_are_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.yaml:2:1: malformed YAML"):
        load_policy(write(tmp_path, "version: 1\n\tsources: []\n"))


def test_unsupported_version(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("version: 1", "version: 2"))
    assert found["version"] == "must be 1, got the number 2 (line 1)"


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = GOOD + (
        "  - &base\n    name: two\n    period: day\n    amount: 5\n  - <<: *base\n    name: three\n"
    )
    policy = load_policy(write(tmp_path, text))
    assert [(b.name, b.amount) for b in policy.budgets] == [("all", 1000), ("two", 5), ("three", 5)]
