"""The quota service under a real uvicorn server, over HTTP: auth, scopes, flows, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from quota_helpers import free_port, serve_app, three_levels

from cloudcircuit.quota import ApiKey, ApiKeyStore, Ledger, Pricing, hash_api_key
from cloudcircuit.quota.service import create_app

ADMIN = {"Authorization": "Bearer admin-secret"}
P1 = {"Authorization": "Bearer p1-secret"}
P2 = {"Authorization": "Bearer p2-secret"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("svc") / "quota.db"
    ledger = Ledger(f"sqlite:///{db}", three_levels(100.0, 10.0, 3.0))
    keys = ApiKeyStore(
        [
            ApiKey("ops", hash_api_key("admin-secret"), admin=True),
            ApiKey("p1-backend", hash_api_key("p1-secret"), ({"project": "p1"},)),
            ApiKey("p2-backend", hash_api_key("p2-secret"), ({"project": "p2"},)),
        ]
    )
    pricing = Pricing({"tiny-model": {"input_cost_per_token": 1e-4, "output_cost_per_token": 2e-4}})
    with serve_app(create_app(ledger, keys, pricing=pricing)) as url:
        yield url


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def test_keys_are_required_and_bound_to_their_scopes(http: httpx.Client) -> None:
    body = {"scope": {"project": "p1", "user": "a"}, "estimate": 0.1}
    missing = http.post("/v1/reserve", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = http.post("/v1/reserve", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert http.post("/v1/reserve", json=body, headers=P2).status_code == 403
    charge = {"scope": body["scope"], "amount": 1.0}
    assert http.post("/v1/charge", json=charge, headers=P2).status_code == 403
    # a project key may not act outside any project either
    no_project = {"scope": {"user": "a"}, "estimate": 0.1}
    assert http.post("/v1/reserve", json=no_project, headers=P1).status_code == 403
    held = http.post("/v1/reserve", json=body, headers=P1)
    assert held.status_code == 200
    token = {"reservation_id": held.json()["reservation_id"]}
    assert http.post("/v1/release", json=token, headers=P2).status_code == 403
    assert http.post("/v1/release", json=token, headers=P1).json()["status"] == "released"
    usage = http.get("/v1/usage", params={"scope": "project=p1"}, headers=P2)
    assert usage.status_code == 403
    assert (
        http.put(
            "/v1/limits", json={"scope": {"project": "p1"}, "limit": 1}, headers=P1
        ).status_code
        == 403
    )


def test_reserve_commit_usage_over_http(http: httpx.Client) -> None:
    scope = {"project": "p1", "user": "flow"}
    held = http.post(
        "/v1/reserve", json={"scope": scope, "estimate": 2.0, "request_id": "f-1"}, headers=P1
    )
    assert held.status_code == 200 and held.json()["amount"] == 2.0
    replay = http.post(
        "/v1/reserve", json={"scope": scope, "estimate": 2.0, "request_id": "f-1"}, headers=P1
    )
    assert replay.json()["replayed"] is True
    assert replay.json()["reservation_id"] == held.json()["reservation_id"]
    denied = http.post("/v1/reserve", json={"scope": scope, "estimate": 1.5}, headers=P1)
    assert denied.status_code == 429
    assert denied.json() | {"request_id": None} == {
        "status": "denied",
        "request_id": None,
        "reason": "limit",
        "message": denied.json()["message"],
        "scope": "global/project=p1/user=flow",
        "level": "user",
        "entity": "flow",
        "limit": 3.0,
        "committed": 0.0,
        "held": 2.0,
        "requested": 1.5,
    }
    commit = {"reservation_id": held.json()["reservation_id"], "actual": 1.25}
    done = http.post("/v1/commit", json=commit, headers=P1)
    assert done.json() == {
        "status": "committed",
        "request_id": "f-1",
        "actual": 1.25,
        "late": False,
        "replayed": False,
    }
    assert http.post("/v1/commit", json=commit, headers=P1).json()["replayed"] is True
    assert http.post("/v1/release", json=commit | {"actual": None}, headers=P1).status_code == 422
    conflict = http.post(
        "/v1/release", json={"reservation_id": commit["reservation_id"]}, headers=P1
    )
    assert conflict.status_code == 409
    charged = http.post("/v1/charge", json={"scope": scope, "amount": 2.0}, headers=P1)
    assert charged.json()["over"] == ["global/project=p1/user=flow"]
    usage = http.get("/v1/usage", params={"scope": "project=p1/user=flow"}, headers=P1).json()
    assert [s["level"] for s in usage["scopes"]] == ["global", "project", "user"]
    assert usage["scopes"][-1] | {"committed": 3.25} == {
        "scope": "global/project=p1/user=flow",
        "level": "user",
        "entity": "flow",
        "window": "d",
        "committed": 3.25,
        "held": 0.0,
        "limit": 3.0,
        "remaining": 0.0,
    }
    assert usage["scopes"][-1]["committed"] == 3.25


def test_bad_bodies_get_422_naming_the_field(http: httpx.Client) -> None:
    scope = {"project": "p1", "user": "a"}
    cases = [
        ({"scope": scope, "estimate": -1}, "estimate"),
        ({"scope": scope, "estimate": 1, "ttl_seconds": 0}, "ttl_seconds"),
        ({"scope": scope, "estimate": 1, "request_id": "a b"}, "request_id"),
        ({"scope": {"project": "p1", "team": "x"}, "estimate": 1}, "scope"),
        ({"scope": {"project": "p1", "user": "a/b"}, "estimate": 1}, "user"),
        ({"scope": scope, "estimate": 1, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        answer = http.post("/v1/reserve", json=body, headers=ADMIN)
        assert answer.status_code == 422, (body, answer.text)
        locs = [loc for err in answer.json()["detail"] for loc in err["loc"]]
        assert field in locs, (field, answer.json())
    nan = http.post(
        "/v1/charge",
        content=b'{"scope": {"project": "p1"}, "amount": NaN}',
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert nan.status_code == 422
    bad_token = http.post("/v1/commit", json={"reservation_id": "zz", "actual": 1}, headers=ADMIN)
    assert bad_token.status_code == 422
    assert "reservation_id" in bad_token.json()["detail"][0]["loc"]
    query = http.get("/v1/usage", params={"scope": "team=x"}, headers=ADMIN)
    assert query.status_code == 422 and query.json()["detail"][0]["loc"][0] == "query"


def test_pricing_by_model_and_unknown_model_denied(http: httpx.Client) -> None:
    scope = {"project": "p1", "user": "priced"}
    body = {"scope": scope, "model": "tiny-model", "input_tokens": 1000, "max_output_tokens": 1000}
    held = http.post("/v1/reserve", json=body, headers=P1)
    assert held.status_code == 200 and held.json()["amount"] == pytest.approx(0.3)
    commit = {
        "reservation_id": held.json()["reservation_id"],
        "model": "tiny-model",
        "input_tokens": 1000,
        "output_tokens": 500,
    }
    assert http.post("/v1/commit", json=commit, headers=P1).json()["actual"] == pytest.approx(0.2)
    unknown = http.post("/v1/reserve", json={**body, "model": "no-such-model"}, headers=P1)
    assert unknown.status_code == 400
    assert unknown.json()["reason"] == "unpriced" and "no-such-model" in unknown.json()["message"]


def test_limits_are_admin_only(http: httpx.Client) -> None:
    put = http.put("/v1/limits", json={"scope": {"project": "p9"}, "limit": 1.5}, headers=ADMIN)
    assert put.json() == {"scope": "global/project=p9", "limit": 1.5}
    got = http.get("/v1/limits", params={"scope": "project=p9"}, headers=ADMIN)
    assert got.json() == {"scope": "global/project=p9", "limit": 1.5}
    assert http.get("/v1/limits", params={"scope": "project=p1"}, headers=P1).status_code == 403
    denied = http.post(
        "/v1/reserve", json={"scope": {"project": "p9"}, "estimate": 2.0}, headers=ADMIN
    )
    assert denied.status_code == 429 and denied.json()["limit"] == 1.5
    clear = {"scope": {"project": "p9"}, "clear": True}
    assert http.put("/v1/limits", json=clear, headers=ADMIN).json()["limit"] == 10.0


def test_coreason_compatible_endpoints(http: httpx.Client) -> None:
    check = {"user_id": "cu", "project_id": "p1", "estimated_cost": 1.0}
    assert http.post("/check", json=check, headers=P1).json() == {"status": "allowed"}
    assert http.post("/check", json=check).status_code == 401
    assert http.post("/check", json=check, headers=P2).status_code == 403
    spend = {"user_id": "cu", "cost": 2.5, "project_id": "p1", "model": "gpt-4"}
    assert http.post("/spend", json=spend, headers=P1).json() == {"status": "recorded"}
    over = http.post("/check", json=check, headers=P1)
    assert over.status_code == 429 and "User daily limit exceeded for cu" in over.json()["detail"]
    negative = http.post("/spend", json={**spend, "cost": -1}, headers=P1)
    assert negative.status_code == 422 and "cost" in negative.json()["detail"][0]["loc"]
    health = http.get("/health")
    assert health.json() == {
        "status": "healthy",
        "ledger": "connected",
        "redis": "connected",
        "backend": "sqlite",
    }


def test_metrics_count_with_bounded_labels(http: httpx.Client) -> None:
    http.post(
        "/v1/reserve", json={"scope": {"project": "p1", "user": "m"}, "estimate": 9.0}, headers=P1
    )
    text = http.get("/metrics").text
    assert 'cloudcircuit_quota_denials_total{reason="limit"}' in text
    assert 'cloudcircuit_quota_reservations_total{outcome="reserved"}' in text
    assert 'cloudcircuit_quota_committed_spend_total{level="user"}' in text
    assert 'cloudcircuit_quota_ledger_seconds_bucket{le="0.001",op="reserve"}' in text
    assert "user=" not in text and '"m"' not in text and "p1" not in text


@pytest.mark.parametrize("workers", [1, 2])
def test_cli_serve_runs_uvicorn_from_a_config_file(tmp_path: Path, workers: int) -> None:
    config = {
        "ledger": f"sqlite:///{tmp_path / 'cli.db'}",
        "hierarchy": {"levels": [{"name": "team", "limit": 5}]},
        "keys": [{"name": "ops", "sha256": hash_api_key("cli-secret"), "admin": True}],
    }
    path = tmp_path / "quota.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    cli = [sys.executable, "-m", "cloudcircuit", "serve", "--config", str(path)]
    proc = subprocess.Popen(
        [*cli, "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "cloudcircuit serve did not start"
                time.sleep(0.1)
        assert answer.json()["backend"] == "sqlite"
        held = httpx.post(
            f"http://127.0.0.1:{port}/v1/reserve",
            json={"scope": {"team": "a"}, "estimate": 6},
            headers={"Authorization": "Bearer cli-secret"},
        )
        assert held.status_code == 429 and held.json()["limit"] == 5.0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    if workers > 1:
        return
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys:\n  - {name: x, sha256: nothex}\n")
    failed = subprocess.run([*cli[:-1], str(bad)], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "keys.0.sha256" in failed.stderr and "bad.yaml" in failed.stderr


def test_quota_key_prints_a_key_and_its_hashed_entry() -> None:
    import json

    from typer.testing import CliRunner

    from cloudcircuit.cli import app

    result = CliRunner().invoke(app, ["quota-key", "p1-backend", "--scope", "project=p1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    token = lines[0].split(": ", 1)[1].strip()
    entry = json.loads(lines[1].split(":", 1)[1])
    assert entry == {
        "name": "p1-backend",
        "sha256": hash_api_key(token),
        "scopes": [{"project": "p1"}],
        "admin": False,
    }
    keys = ApiKeyStore([ApiKey(entry["name"], entry["sha256"], tuple(entry["scopes"]))])
    found = keys.authenticate(token)
    assert found is not None and found.allows({"project": "p1", "user": "x"})
    assert not found.allows({"project": "p2", "user": "x"})
    bad = CliRunner().invoke(app, ["quota-key", "x", "--scope", "project"])
    assert bad.exit_code == 2 and "level=entity" in bad.output


def test_service_config_errors_name_their_place(tmp_path: Path) -> None:
    from cloudcircuit.errors import ConfigError
    from cloudcircuit.quota import load_service_config

    broken = tmp_path / "broken.yaml"
    broken.write_text("ledger: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+, column \d+"):
        load_service_config(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("hierarchy:\n  levels:\n    - {name: Global, limit: -1}\ntimeout_seconds: 0\n")
    with pytest.raises(ConfigError) as info:
        load_service_config(wrong)
    text = str(info.value)
    assert "hierarchy.levels.0.name" in text and "hierarchy.levels.0.limit" in text
    assert "timeout_seconds" in text
