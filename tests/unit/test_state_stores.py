"""open_state scheme selection, backend specifics and the persisted circuit breaker."""

from __future__ import annotations

import importlib
import sqlite3
import sys
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cloudcircuit.state as state_mod
from cloudcircuit.errors import ConfigError, InputError, StateError
from cloudcircuit.guardrails import evaluate_circuit_breaker
from cloudcircuit.providers import JournalEntry, Resource
from cloudcircuit.state import (
    BreakerState,
    MemoryStore,
    SQLiteStore,
    breaker_evidence,
    load_breaker,
    open_state,
    record_scan,
    save_breaker,
    transaction,
)
from cloudcircuit.state.codec import decode_entry, encode_entry
from cloudcircuit.state.redis import split_prefix

# -- open_state -----------------------------------------------------------------------------


def test_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_state("sqlite:///.cloudcircuit/state.db")
    assert isinstance(rel, SQLiteStore)
    rel.set("k", 1)
    rel.close()
    assert (tmp_path / ".cloudcircuit" / "state.db").is_file()
    absolute = open_state(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == f"{tmp_path}/abs.db"
    absolute.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path}/wal.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "wal.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:relative.db"])
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        open_state(url)


def test_memory_scheme() -> None:
    assert isinstance(open_state("memory://"), MemoryStore)


def test_unknown_scheme_names_it_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        open_state("etcd://host/x")
    message = str(info.value)
    assert "'etcd'" in message
    for known in ("memory", "redis", "sqlite"):
        assert known in message


@pytest.mark.parametrize("url", ["", "   ", "no-scheme-here"])
def test_empty_or_schemeless(url: str) -> None:
    with pytest.raises(ConfigError, match="state"):
        open_state(url)


def _factory(url: str) -> MemoryStore:
    store = MemoryStore()
    store.set("opened-with", url)
    return store


def _not_a_store(url: str) -> object:
    return object()


def test_entry_point_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        EntryPoint("dynamo", f"{__name__}:_factory", state_mod.STATE_ENTRY_POINT_GROUP),
        EntryPoint("bogus", f"{__name__}:_not_a_store", state_mod.STATE_ENTRY_POINT_GROUP),
        EntryPoint("gone", "cloudcircuit_no_such_pkg:f", state_mod.STATE_ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(state_mod, "_entry_points", lambda: eps)
    store = open_state("dynamo://table-x")
    assert store.get("opened-with") == "dynamo://table-x"
    assert "dynamo" in state_mod.available_schemes()
    with pytest.raises(ConfigError, match="not a StateStore"):
        open_state("bogus://x")
    with pytest.raises(ConfigError, match="cannot be imported"):
        open_state("gone://x")


def test_redis_without_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'cloudcircuit\[redis\]'"):
        open_state("redis://127.0.0.1:6379/0")


def test_split_prefix() -> None:
    assert split_prefix("redis://h:1/0?prefix=team-a:&ssl_cert_reqs=none") == (
        "redis://h:1/0?ssl_cert_reqs=none",
        "team-a:",
    )
    assert split_prefix("redis://h:1/0") == ("redis://h:1/0", "cloudcircuit:")


def test_redis_prefix_isolates(redis_url: str) -> None:
    import uuid

    a = open_state(f"{redis_url}?prefix=cc-unit-{uuid.uuid4().hex}:")
    b = open_state(f"{redis_url}?prefix=cc-unit-{uuid.uuid4().hex}:")
    try:
        a.set("k", "a")
        assert b.get("k") is None
    finally:
        a.delete("k")
        a.close()
        b.close()


# -- backend specifics ----------------------------------------------------------------------


def test_memory_ttl_with_injected_clock() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    store.set("k", "v", ttl=10)
    now[0] = 1009.9
    assert store.get("k") == "v"
    now[0] = 1010.0
    assert store.get("k") is None


def test_sqlite_ttl_with_injected_clock(tmp_path: Path) -> None:
    now = [1000.0]
    store = SQLiteStore(tmp_path / "c.db", clock=lambda: now[0])
    store.set("k", "v", ttl=10)
    store.set("forever", "v")
    now[0] = 1010.0
    assert store.get("k") is None
    assert store.purge_expired() == 1
    assert store.get("forever") == "v"
    store.close()


def test_sqlite_nested_transaction_rolls_back_inner_only(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db")
    with store.transaction():
        store.set("outer", 1)
        with pytest.raises(ValueError), store.transaction():
            store.set("inner", 2)
            raise ValueError("inner failed")
        store.set("after", 3)
    assert (store.get("outer"), store.get("inner"), store.get("after")) == (1, None, 3)
    store.close()


def test_memory_transaction_rolls_back() -> None:
    store = MemoryStore()
    store.set("k", 1)
    with pytest.raises(KeyError), store.transaction():
        store.set("k", 2)
        raise KeyError("x")
    assert store.get("k") == 1


def test_closed_stores_raise_state_error(tmp_path: Path) -> None:
    for store in (MemoryStore(), SQLiteStore(tmp_path / "closed.db")):
        store.close()
        with pytest.raises(StateError, match="closed"):
            store.get("k")


def test_corrupt_sqlite_value_is_state_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bad.db")
    conn = sqlite3.connect(tmp_path / "bad.db")
    conn.execute("INSERT INTO kv (key, value) VALUES ('broken', '{not json')")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="broken"):
        store.get("broken")
    store.close()


def test_transaction_helper_without_transaction_method() -> None:
    class Plain:
        def __init__(self) -> None:
            self.inner = MemoryStore()

        def __getattr__(self, name: str) -> Any:
            if name == "transaction":
                raise AttributeError(name)
            return getattr(self.inner, name)

    plain: Any = Plain()
    with pytest.raises(RuntimeError), transaction(plain):
        plain.set("k", 1)
        raise RuntimeError("x")
    assert plain.get("k") == 1  # no transaction: the write applied at once


# -- breaker --------------------------------------------------------------------------------


def test_breaker_opens_after_threshold_then_cools_down() -> None:
    store = MemoryStore()
    at = datetime(2026, 11, 23, tzinfo=UTC)
    kw: dict[str, Any] = {"failure_threshold": 3, "cooldown_scans": 2, "now": at}
    assert load_breaker(store, "p") == BreakerState()
    s = record_scan(store, "p", ok=False, reason="source timed out", **kw)
    assert (s.consecutive_failures, s.cooldown_remaining, s.decision(3).is_open) == (1, 0, False)
    record_scan(store, "p", ok=False, **kw)
    s = record_scan(store, "p", ok=False, reason="incomplete data", **kw)
    assert s.decision(3).is_open and s.cooldown_remaining == 2 and s.opened_at == at
    assert s.last_failure == "incomplete data"
    assert load_breaker(store, "p") == s  # persisted, datetimes round-trip
    s = record_scan(store, "p", ok=True, **kw)
    assert (s.consecutive_failures, s.cooldown_remaining, s.decision(3).is_open) == (0, 1, True)
    s = record_scan(store, "p", ok=True, **kw)
    assert s.decision(3).is_open is False and s.opened_at is None


def test_breaker_failure_while_cooling_restarts_cooldown() -> None:
    store = MemoryStore()
    save_breaker(store, "p", BreakerState(consecutive_failures=0, cooldown_remaining=1))
    s = record_scan(store, "p", ok=False, failure_threshold=1, cooldown_scans=4)
    assert s.cooldown_remaining == 4


def test_breaker_decision_matches_03() -> None:
    for failures in range(5):
        for cooldown in range(3):
            state = BreakerState(consecutive_failures=failures, cooldown_remaining=cooldown)
            assert state.decision(3) == evaluate_circuit_breaker(failures, 3, cooldown)


def test_breaker_evidence() -> None:
    open_ev = breaker_evidence(BreakerState(consecutive_failures=3, cooldown_remaining=2))
    assert open_ev.rule == "breaker" and open_ev.fired and open_ev.action == "block"
    assert open_ev.data["is_open"] is True and open_ev.data["retry_after_steps"] == 2
    closed = breaker_evidence(BreakerState(), failure_threshold=3)
    assert not closed.fired and closed.data["allow_operation"] is True
    with pytest.raises(InputError):
        breaker_evidence(BreakerState(), action="allow")


def test_corrupt_breaker_record() -> None:
    store = MemoryStore()
    store.set("breaker:p", {"consecutive_failures": "three"})
    with pytest.raises(StateError, match="breaker:p"):
        load_breaker(store, "p")
    store.set("breaker:p", [1, 2])
    with pytest.raises(StateError, match="breaker:p"):
        load_breaker(store, "p")


def test_record_scan_validates() -> None:
    with pytest.raises(InputError, match="failure_threshold"):
        record_scan(MemoryStore(), "p", ok=True, failure_threshold=0)


# -- encoding -------------------------------------------------------------------------------

_text = st.text(max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(
    state=st.dictionaries(_text, _json, max_size=5),
    tags=st.dictionaries(_text, _text, max_size=4),
    seq=st.integers(min_value=0, max_value=10**6),
    at=st.datetimes(timezones=st.just(UTC)),
    error=st.none() | _text,
)
def test_journal_entry_roundtrips_exactly(
    state: dict[str, Any], tags: dict[str, str], seq: int, at: datetime, error: str | None
) -> None:
    entry = JournalEntry(
        run_id="run-h",
        seq=seq,
        phase="after",
        action="tag",
        resource=Resource(provider="aws", type="ec2:instance", id="i-1", tags=tags),
        state=state,
        status="done",
        at=at,
        error=error,
    )
    assert decode_entry(encode_entry(entry)) == entry


@pytest.mark.parametrize(
    "module",
    [
        "cloudcircuit.state",
        "cloudcircuit.state.base",
        "cloudcircuit.state.breaker",
        "cloudcircuit.state.codec",
        "cloudcircuit.state.memory",
        "cloudcircuit.state.redis",
        "cloudcircuit.state.sqlite",
        "cloudcircuit.alerts",
        "cloudcircuit.alerts.config",
        "cloudcircuit.alerts.dispatch",
        "cloudcircuit.alerts.payload",
        "cloudcircuit.alerts.sinks",
        "cloudcircuit.alerts.transport",
    ],
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    def key(name: str) -> tuple[int, str]:
        return (1, name) if name.isupper() else (2, name) if name[0].isupper() else (3, name)

    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(set(names), key=key)
    assert all(hasattr(mod, name) for name in names)


def test_reserved_datetime_tag_is_refused() -> None:
    with pytest.raises(InputError, match="reserved"):
        MemoryStore().set("k", {"x": {"$datetime": "not a date"}})


def test_redis_repr_and_errors_hide_credentials() -> None:
    store = open_state("redis://user:hunter2@127.0.0.1:1/0?prefix=p:")
    assert "hunter2" not in repr(store) and "127.0.0.1:1" in repr(store)
    with pytest.raises(StateError) as info:
        store.get("k")  # nothing listens on port 1
    assert "hunter2" not in str(info.value) and "get 'k'" in str(info.value)


def test_redis_transaction_buffers_writes_but_not_counters(redis_url: str) -> None:
    import uuid

    import redis

    prefix = f"cc-unit-{uuid.uuid4().hex}:"
    store = open_state(f"{redis_url}?prefix={prefix}")
    other = open_state(f"{redis_url}?prefix={prefix}")
    try:
        with pytest.raises(RuntimeError), transaction(store):
            store.set("k", 1)
            assert store.get("k") == 1 and other.get("k") is None  # buffered until commit
            store.delete("k")
            assert store.get("k") is None
            assert store.incr("n") == 1  # needs the server's answer: applied at once
            raise RuntimeError("scan failed")
        assert other.get("k") is None and other.get("n") == 1
        with transaction(store), transaction(store):  # nesting joins the outer one
            store.set("k", 2)
        assert other.get("k") == 2
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        store.close()
        other.close()
