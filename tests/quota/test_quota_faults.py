"""Faults: Redis stopped or killed under load (fail closed, recover), a killed worker's hold."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from quota_helpers import OwnRedis, serve_app, three_levels

from cloudcircuit.errors import LedgerUnavailableError
from cloudcircuit.quota import ApiKey, ApiKeyStore, Ledger, hash_api_key
from cloudcircuit.quota.service import create_app

TIMEOUT = 0.3
# a bound on how long a denial may take (timeout plus scheduling slack on a loaded 2-core box)
BOUND = TIMEOUT * 3 + 1.0


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary is not installed")
    server = OwnRedis()
    yield server
    server.stop()


def _commit_until_done(ledger: Ledger, held: Any, amount: float) -> None:
    """Retry a commit until the ledger answers: the same reservation is idempotent."""
    for _ in range(200):
        try:
            ledger.commit(held, amount)
            return
        except LedgerUnavailableError:
            time.sleep(0.05)
    raise AssertionError("commit never went through")


def test_redis_stopped_under_load_denies_in_time_and_recovers(own_redis: OwnRedis) -> None:
    ledger = Ledger(own_redis.url, three_levels(None, None, None), timeout=TIMEOUT)
    scope = {"project": "p1", "user": "u1"}
    for _ in range(10):
        ledger.commit(ledger.reserve(scope, 1.0), 1.0)
    stop = threading.Event()
    calls: list[tuple[float, bool, str | None]] = []
    committed = [0]
    lock = threading.Lock()

    def load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            held = ledger.reserve(scope, 0.01, ttl=2)
            elapsed = time.monotonic() - started
            with lock:
                calls.append((elapsed, held.allowed, held.denial.reason if held.denial else None))
            if held.allowed:
                _commit_until_done(ledger, held, 0.01)
                with lock:
                    committed[0] += 1

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    own_redis.signal(signal.SIGSTOP)  # the server stops answering: every call must time out
    time.sleep(1.5)
    own_redis.signal(signal.SIGCONT)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    denied = [c for c in calls if not c[1]]
    assert denied, "no request was denied while Redis was stopped"
    assert {c[2] for c in denied} == {"ledger_unavailable"}
    assert max(c[0] for c in denied) < BOUND
    # recovered without a restart of the ledger; no committed spend lost
    assert ledger.release(ledger.reserve(scope, 0.01).raise_for_denial()).status == "released"
    usage = ledger.usage(scope)[-1]
    assert usage.committed == pytest.approx(10.0 + committed[0] * 0.01, abs=1e-9)
    later = Ledger(ledger.backend, ledger.hierarchy, clock=lambda: time.time() + 5)
    assert later.usage(scope)[-1].held == 0.0  # holds whose answers were lost expired


def test_redis_killed_and_restarted_keeps_committed_spend(own_redis: OwnRedis) -> None:
    ledger = Ledger(own_redis.url, three_levels(), timeout=TIMEOUT)
    scope = {"project": "p1", "user": "u1"}
    ledger.commit(ledger.reserve(scope, 2.0), 1.75)
    own_redis.kill()
    started = time.monotonic()
    down = ledger.reserve(scope, 0.5)
    assert time.monotonic() - started < BOUND
    assert down.denial is not None and down.denial.reason == "ledger_unavailable"
    assert not ledger.healthy()
    with pytest.raises(LedgerUnavailableError):
        ledger.charge(scope, 0.5)
    own_redis.start()
    for _ in range(50):
        if ledger.healthy():
            break
        time.sleep(0.05)
    assert ledger.usage(scope)[-1].committed == 1.75
    assert ledger.reserve(scope, 0.5).allowed


def test_fail_open_is_an_opt_in_per_scope(own_redis: OwnRedis) -> None:
    scope = {"project": "p1", "user": "u1"}
    closed = Ledger(own_redis.url, three_levels(), timeout=TIMEOUT)
    opened = Ledger(own_redis.url, three_levels(fail_open=True), timeout=TIMEOUT)
    own_redis.kill()
    assert not closed.reserve(scope, 1.0).allowed
    passed = opened.reserve(scope, 1.0)
    assert passed.allowed and passed.degraded


def _reserve_and_die(url: str) -> None:
    ledger = Ledger(url, three_levels(), timeout=5.0)
    ledger.reserve({"project": "p1", "user": "u1"}, 3.0, ttl=2)
    os.kill(os.getpid(), signal.SIGKILL)


def test_killed_worker_hold_expires(backend_url: str) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("memory:// lives and dies with its process")
    child = multiprocessing.get_context("fork").Process(
        target=_reserve_and_die, args=(backend_url,)
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    scope = {"project": "p1", "user": "u1"}
    ledger = Ledger(backend_url, three_levels(), timeout=5.0)
    assert ledger.usage(scope)[-1].held == 3.0
    assert not ledger.reserve(scope, 1.0).allowed
    later = Ledger(ledger.backend, ledger.hierarchy, clock=lambda: time.time() + 3)
    assert later.usage(scope)[-1].held == 0.0
    assert later.reserve(scope, 3.0).allowed
    ledger.close()


def test_service_denies_with_503_not_500_while_redis_is_stopped(own_redis: OwnRedis) -> None:
    ledger = Ledger(own_redis.url, three_levels(), timeout=TIMEOUT)
    keys = ApiKeyStore([ApiKey("admin", hash_api_key("admin-key"), admin=True)])
    auth = {"Authorization": "Bearer admin-key"}
    body = {"scope": {"project": "p1", "user": "u1"}, "estimate": 0.5}
    with serve_app(create_app(ledger, keys)) as base, httpx.Client(base_url=base) as http:
        held = http.post("/v1/reserve", json=body, headers=auth)
        assert held.status_code == 200
        own_redis.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            denied = http.post("/v1/reserve", json=body, headers=auth, timeout=10)
            assert time.monotonic() - started < BOUND
            assert denied.status_code == 503
            assert denied.json()["status"] == "denied"
            assert denied.json()["reason"] == "ledger_unavailable"
            commit = {"reservation_id": held.json()["reservation_id"], "actual": 0.25}
            assert http.post("/v1/commit", json=commit, headers=auth).status_code == 503
            assert http.get("/health", timeout=10).status_code == 503
        finally:
            own_redis.signal(signal.SIGCONT)
        assert http.get("/health").json()["redis"] == "connected"
        again = http.post("/v1/commit", json=commit, headers=auth)  # the retried commit
        assert again.status_code == 200
        assert http.post("/v1/reserve", json=body, headers=auth).status_code == 200
        usage = http.get("/v1/usage", params={"scope": "project=p1/user=u1"}, headers=auth)
        assert usage.json()["scopes"][-1]["committed"] == 0.25


def test_scripts_are_loaded_once_and_each_operation_is_one_evalsha(own_redis: OwnRedis) -> None:
    import redis

    ledger = Ledger(own_redis.url, three_levels(), timeout=2.0)
    scope = {"project": "p1", "user": "u1"}
    for _ in range(5):
        ledger.commit(ledger.reserve(scope, 0.1), 0.1)  # 2 operations
    ledger.release(ledger.reserve(scope, 0.1))  # 2
    ledger.charge(scope, 0.1)  # 1
    ledger.usage(scope)  # 1
    stats = redis.Redis.from_url(own_redis.url).info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 5 * 2 + 2 + 1 + 1 + 1  # + the NOSCRIPT miss
    assert stats["cmdstat_script|load"]["calls"] == 6  # every script once, on the first miss
    assert "cmdstat_eval" not in stats


def test_a_garbled_reply_fails_closed_and_drops_the_connection(redis_url: str) -> None:
    """Bytes that are not RESP on the ledger's own connection: a denial (ledger_unavailable),
    never a raw parser error, and the next call gets a fresh connection."""
    import socket

    ledger = Ledger(f"{redis_url}?prefix=cc-test-garbled-{os.getpid()}:", three_levels())
    scope = {"project": "p1", "user": "u1"}
    try:
        ledger.commit(ledger.reserve(scope, 0.1), 0.1)  # the wire is connected
        wire = ledger.backend._wire  # type: ignore[attr-defined]
        ours, theirs = socket.socketpair()
        theirs.sendall(b"?not resp\r\n")
        real, wire._sock = wire._sock, ours
        denied = ledger.reserve(scope, 0.1)
        assert not denied.allowed and denied.denial is not None
        assert denied.denial.reason == "ledger_unavailable"
        assert wire._sock is None  # dropped
        real.close()
        theirs.close()
        assert ledger.reserve(scope, 0.1).allowed  # reconnected
    finally:
        ledger.close()
