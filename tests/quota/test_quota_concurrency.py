"""64 workers (threads, then processes) on one limit; the same request 100x at once."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest
from quota_helpers import three_levels

from cloudcircuit.quota import Ledger

WORKERS = 64
USERS = [f"u{i}" for i in range(8)]
LIMITS = {"global": 1000.0, "project": 20.0, "user": 4.0}


def _worker(ledger: Ledger, seed: int, rounds: int) -> dict[str, int]:
    """Random reservations; commits (actual <= estimate) or releases. Cents committed per user."""
    rng = random.Random(seed)
    committed: dict[str, int] = Counter()
    for _ in range(rounds):
        user = rng.choice(USERS)
        cents = rng.randint(10, 100)
        held = ledger.reserve({"project": "p1", "user": user}, cents / 100, ttl=600)
        if not held.allowed:
            assert held.denial is not None and held.denial.reason == "limit", held.denial
            continue
        if rng.random() < 0.2:
            ledger.release(held)
            continue
        actual = rng.randint(0, cents)
        ledger.commit(held, actual / 100)
        committed[user] += actual
    return dict(committed)


def _check(ledger: Ledger, results: list[dict[str, int]]) -> None:
    per_user: Counter[str] = Counter()
    for result in results:
        per_user.update(result)
    total_cents = sum(per_user.values())
    assert total_cents > 0
    project_total = 0.0
    for user in USERS:
        usage = {u.level: u for u in ledger.usage({"project": "p1", "user": user})}
        assert usage["user"].held == 0.0 and usage["project"].held == 0.0
        assert usage["user"].committed == pytest.approx(per_user[user] / 100, abs=1e-9)
        assert usage["user"].committed <= LIMITS["user"] + 1e-9
        project_total += usage["user"].committed
        assert usage["project"].committed <= LIMITS["project"] + 1e-9
        assert usage["global"].committed == usage["project"].committed
    assert usage["project"].committed == pytest.approx(total_cents / 100, abs=1e-9)
    assert project_total == pytest.approx(usage["project"].committed, abs=1e-9)


def test_64_threads_never_overshoot(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels(*LIMITS.values()))
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda s: _worker(ledger, s, 12), range(WORKERS)))
    _check(ledger, results)
    # the limit was contended: the project is (nearly) full
    assert ledger.usage({"project": "p1"})[-1].committed > LIMITS["project"] / 2


_URL: dict[str, Any] = {}


def _process_worker(seed: int) -> dict[str, int]:
    ledger = Ledger(_URL["url"], three_levels(*LIMITS.values()), timeout=10.0)
    try:
        return _worker(ledger, seed, 6)
    finally:
        ledger.close()


def test_64_processes_never_overshoot(backend_url: str) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("memory:// is one process by design")
    _URL["url"] = backend_url
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        results = list(pool.map(_process_worker, range(WORKERS)))
    ledger = Ledger(backend_url, three_levels(*LIMITS.values()), timeout=5.0)
    try:
        _check(ledger, results)
    finally:
        ledger.close()


def test_same_request_100x_concurrently_is_charged_once(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    scope = {"project": "p1", "user": "u1"}
    start = threading.Barrier(100)

    def reserve(_: int) -> Any:
        start.wait()
        return ledger.reserve(scope, 2.0, request_id="same-request")

    with ThreadPoolExecutor(100) as pool:
        holds = list(pool.map(reserve, range(100)))
    assert all(h.allowed for h in holds)
    assert sum(not h.replayed for h in holds) == 1
    assert len({h.expires_at for h in holds}) == 1
    assert ledger.usage(scope)[-1].held == 2.0

    def commit(i: int) -> Any:
        start.wait()
        return ledger.commit(holds[i], 1.5 if i % 2 else 1.0)

    with ThreadPoolExecutor(100) as pool:
        commits = list(pool.map(commit, range(100)))
    assert sum(not c.replayed for c in commits) == 1
    assert len({c.actual for c in commits}) == 1
    usage = ledger.usage(scope)[-1]
    assert (usage.committed, usage.held) == (commits[0].actual, 0.0)

    def charge(_: int) -> Any:
        start.wait()
        return ledger.charge(scope, 0.5, request_id="same-charge")

    with ThreadPoolExecutor(100) as pool:
        charges = list(pool.map(charge, range(100)))
    assert sum(not c.replayed for c in charges) == 1
    assert ledger.usage(scope)[-1].committed == commits[0].actual + 0.5


_SHARED: dict[str, Ledger] = {}


def _forked_lifecycle(_: int) -> str:
    ledger = _SHARED["ledger"]  # inherited through fork, with the parent's open connection
    held = ledger.reserve({"project": "p1", "user": "u1"}, 0.1)
    ledger.commit(held, 0.1)
    return held.request_id


def test_a_ledger_opened_before_a_fork_works_in_parent_and_children(backend_url: str) -> None:
    """A forked child must not share the parent's connection (replies would cross) nor hand
    out the parent's request ids."""
    if backend_url.startswith("memory"):
        pytest.skip("memory:// is one process by design")
    ledger = Ledger(backend_url, three_levels(*LIMITS.values()), timeout=10.0)
    try:
        first = ledger.reserve({"project": "p1", "user": "u1"}, 0.1)  # connection now open
        _SHARED["ledger"] = ledger
        with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
            ids = list(pool.map(_forked_lifecycle, range(8)))
        assert len({first.request_id, *ids}) == 9
        assert ledger.commit(first, 0.1).actual == 0.1
        assert ledger.usage({"project": "p1", "user": "u1"})[-1].committed == pytest.approx(0.9)
    finally:
        _SHARED.clear()
        ledger.close()
