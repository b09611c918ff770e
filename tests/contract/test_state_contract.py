"""One contract, every backend: sqlite (a file in tmp_path), memory:// and Redis (own prefix)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cloudcircuit.errors import InputError, StateError
from cloudcircuit.providers import JournalEntry, Resource, StateStore
from cloudcircuit.state import open_state, transaction

BACKENDS = ["sqlite", "memory", "redis"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    kind = request.param
    if kind == "sqlite":
        s = open_state(f"sqlite:///{tmp_path}/state.db")
        yield s
        s.close()
    elif kind == "memory":
        s = open_state("memory://")
        yield s
        s.close()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"cc-test-state-{uuid.uuid4().hex}:"
        s = open_state(f"{url}?prefix={prefix}")
        yield s
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        s.close()


def _wait_until_gone(store: StateStore, key: str) -> None:
    """Poll until a short TTL has run out (waits, asserts nothing about how long)."""
    deadline = time.monotonic() + 10
    while store.get(key) is not None:
        if time.monotonic() > deadline:
            pytest.fail(f"{key} never expired")
        time.sleep(0.02)


def _entry(run: str, seq: int, phase: str, **kw: Any) -> JournalEntry:
    return JournalEntry(
        run_id=run,
        seq=seq,
        phase=phase,  # type: ignore[arg-type]
        action=kw.get("action", "scale_down"),
        resource=kw.get(
            "resource",
            Resource(
                provider="aws",
                type="autoscaling:group",
                id=f"asg-{seq}",
                region="eu-west-1",
                account="222222222222",
                tags={"team": "ml", "env": "research"},
                name="trainers",
            ),
        ),
        state=kw.get("state", {"desired": 5, "min": 1, "max": 10}),
        status=kw.get("status", "planned"),
        at=kw.get("at", datetime(2026, 11, 23, 4, 0, seq, 123456, tzinfo=UTC)),
        error=kw.get("error"),
    )


def test_is_a_state_store(store: StateStore) -> None:
    assert isinstance(store, StateStore)


def test_get_set_delete_roundtrip(store: StateStore) -> None:
    assert store.get("missing") is None
    value = {"a": 1, "b": [1.5, "x", None, True], "nested": {"k": "v"}}
    store.set("k1", value)
    assert store.get("k1") == value
    store.set("k1", "replaced")
    assert store.get("k1") == "replaced"
    store.delete("k1")
    assert store.get("k1") is None
    store.delete("k1")  # deleting a missing key is fine


def test_datetimes_come_back_aware_utc(store: StateStore) -> None:
    at = datetime(2026, 11, 23, 5, 30, tzinfo=timezone(timedelta(hours=2)))
    store.set("when", {"at": at})
    back = store.get("when")["at"]
    assert back == at
    assert back.tzinfo == UTC


def test_bad_values_are_refused_with_the_key(store: StateStore) -> None:
    with pytest.raises(InputError, match=r"k\.x"):
        store.set("k", {"x": object()})
    with pytest.raises(InputError, match="finite"):
        store.set("k", float("nan"))
    with pytest.raises(InputError, match="timezone-aware"):
        store.set("k", datetime(2026, 1, 1))
    with pytest.raises(InputError, match="ttl"):
        store.set("k", 1, ttl=0)
    assert store.get("k") is None


def test_ttl_expiry(store: StateStore) -> None:
    store.set("short", "v", ttl=0.15)
    store.set("long", "v", ttl=3600)
    assert store.get("short") == "v"
    _wait_until_gone(store, "short")
    assert store.get("long") == "v"


def test_set_if_absent(store: StateStore) -> None:
    assert store.set_if_absent("once", {"n": 1}) is True
    assert store.set_if_absent("once", {"n": 2}) is False
    assert store.get("once") == {"n": 1}
    store.delete("once")
    assert store.set_if_absent("once", {"n": 3}) is True
    assert store.get("once") == {"n": 3}


def test_set_if_absent_after_expiry(store: StateStore) -> None:
    assert store.set_if_absent("dedup", 1, ttl=0.15) is True
    assert store.set_if_absent("dedup", 2, ttl=0.15) is False
    _wait_until_gone(store, "dedup")
    assert store.set_if_absent("dedup", 3, ttl=60) is True
    assert store.get("dedup") == 3


def test_incr(store: StateStore) -> None:
    assert store.incr("count") == 1
    assert store.incr("count") == 2
    assert store.incr("count", 5) == 7
    assert store.incr("count", -3) == 4
    assert store.get("count") == 4
    store.set("text", "abc")
    with pytest.raises(StateError, match="text"):
        store.incr("text")


def test_incr_keeps_ttl(store: StateStore) -> None:
    store.set("window", 0, ttl=0.15)
    assert store.incr("window") == 1
    _wait_until_gone(store, "window")
    assert store.incr("window") == 1


def test_journal_roundtrip_and_order(store: StateStore) -> None:
    entries = [
        _entry("run-a", 0, "before"),
        _entry("run-a", 0, "after", status="done", state={"desired": 0, "min": 0, "max": 10}),
        _entry(
            "run-a",
            1,
            "before",
            action="tag",
            resource=Resource(provider="aws", type="ec2:instance", id="i-1"),
            state={"tags": {}, "launched": datetime(2026, 11, 1, tzinfo=UTC)},
        ),
        _entry("run-a", 1, "after", status="failed", error="AccessDenied: no ec2:CreateTags"),
    ]
    other = _entry("run-b", 0, "before")
    store.append_journal(entries[0])
    store.append_journal(entries[1])
    store.append_journal(other)
    store.append_journal(entries[2])
    store.append_journal(entries[3])
    assert store.journal("run-a") == entries
    assert store.journal("run-b") == [other]
    assert store.journal("run-none") == []


def test_journal_refuses_naive_time(store: StateStore) -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        store.append_journal(_entry("run-n", 0, "before", at=datetime(2026, 11, 23)))
    assert store.journal("run-n") == []


def test_runs_newest_first_with_limit(store: StateStore) -> None:
    for run in ["r1", "r2", "r3"]:
        store.append_journal(_entry(run, 0, "before"))
    store.append_journal(_entry("r1", 0, "after"))  # later lines do not reorder runs
    assert store.runs() == ["r3", "r2", "r1"]
    assert store.runs(limit=2) == ["r3", "r2"]
    assert store.runs(limit=0) == []


def test_transaction_commits(store: StateStore) -> None:
    with transaction(store):
        store.set("tx-a", 1)
        store.append_journal(_entry("tx-run", 0, "before"))
        assert store.get("tx-a") == 1  # a transaction sees its own writes
    assert store.get("tx-a") == 1
    assert len(store.journal("tx-run")) == 1


def test_failed_transaction_leaves_nothing(store: StateStore) -> None:
    store.set("tx-keep", "old")
    with pytest.raises(RuntimeError, match="scan failed"), transaction(store):
        store.set("tx-keep", "new")
        store.set("tx-b", 2)
        store.delete("tx-keep")
        store.append_journal(_entry("tx-fail", 0, "before"))
        raise RuntimeError("scan failed")
    assert store.get("tx-keep") == "old"
    assert store.get("tx-b") is None
    assert store.journal("tx-fail") == []
    assert "tx-fail" not in store.runs()


_INCR_SCRIPT = textwrap.dedent(
    """
    import sys
    from cloudcircuit.state import open_state
    store = open_state(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        store.incr("shared-counter")
    store.close()
    """
)


def test_sqlite_counter_is_exact_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    open_state(url).close()  # create the schema once, as a scan would
    procs = [
        subprocess.Popen([sys.executable, "-c", _INCR_SCRIPT, url, "150"], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = open_state(url)
    assert store.get("shared-counter") == 600
    store.close()


def test_sqlite_state_persists_across_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/state.db"
    first = open_state(url)
    first.set("k", {"v": 1})
    first.append_journal(_entry("persist", 0, "before"))
    first.close()
    second = open_state(url)
    assert second.get("k") == {"v": 1}
    assert [e.run_id for e in second.journal("persist")] == ["persist"]
    second.close()


def test_concurrent_incr_from_threads(store: StateStore) -> None:
    import threading

    def work() -> None:
        for _ in range(100):
            store.incr("threads")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("threads") == 400
