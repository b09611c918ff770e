"""The bucketed and Redis stores agree with the exact store at bucket resolution."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudcircuit.errors import StateError
from cloudcircuit.slo import (
    BucketedStore,
    InMemoryStore,
    Observation,
    RedisStore,
    SLODefinition,
    SLOTracker,
    default_resolution,
)

RES = 60
T0 = 1_700_000_000.0

events = st.lists(
    st.tuples(st.floats(min_value=0, max_value=400, allow_nan=False), st.booleans()),
    min_size=1,
    max_size=120,
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[int, list[Observation], list[tuple[float, int]]]:
    buckets = draw(st.integers(min_value=1, max_value=40))
    max_age = buckets * RES
    ts = T0 + draw(st.floats(min_value=0, max_value=RES, allow_nan=False))
    obs: list[Observation] = []
    for gap, ok in draw(events):
        ts += gap
        obs.append(Observation(ts, ok))
    newest = math.ceil(obs[-1].timestamp / RES) * RES
    queries = [
        (newest + RES * draw(st.integers(0, 5)), RES * draw(st.integers(1, buckets)))
        for _ in range(5)
    ]
    return max_age, obs, queries


def _exact(obs: list[Observation], max_age: int, now: float, seconds: int) -> tuple[int, int]:
    store = InMemoryStore(max_age)
    for o in obs:
        store.record(o)
    window = store.window(now, seconds)
    return len(window), sum(not o.success for o in window)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_bucketed_store_agrees_with_exact_store(
    case: tuple[int, list[Observation], list[tuple[float, int]]],
) -> None:
    max_age, obs, queries = case
    store = BucketedStore(max_age, resolution_seconds=RES)
    for o in obs:
        store.record(o)
    for now, seconds in queries:
        assert store.counts(now, seconds) == _exact(obs, max_age, now, seconds)
        window = store.window(now, seconds)
        assert (len(window), sum(not o.success for o in window)) == store.counts(now, seconds)


def test_bucketed_store_memory_is_fixed_and_counts_are_running_totals() -> None:
    store = BucketedStore(3600, resolution_seconds=60)
    assert store.bucket_count == 61
    for i in range(100_000):
        store.add(T0 + (i % 3600), i % 10 != 0)
    assert store.bucket_count == 61
    assert len(store) == 100_000
    assert store.counts(T0 + 3600, 3600) == (100_000, 10_000)
    store.add(T0 + 3 * 3600, True)  # everything older than an hour behind it is gone
    assert len(store) == 1
    store.add(T0, False)  # far older than the ring: dropped, as the exact store trims it
    assert len(store) == 1
    store.trim(T0 + 4 * 3600)
    assert len(store) == 0


def test_default_resolution_follows_the_shortest_window() -> None:
    d = SLODefinition(name="a", target=0.999)
    assert default_resolution(d.window_seconds, d.burn_rate_windows) == 60
    assert BucketedStore.for_window(d.window_seconds, d.burn_rate_windows).bucket_count == 43201
    assert default_resolution(30) == 1
    with pytest.raises(ValueError):
        BucketedStore(0)
    with pytest.raises(ValueError):
        BucketedStore(10, resolution_seconds=0)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"cc-test-detect:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=scenario())
def test_redis_store_agrees_with_exact_store(
    redis_url: str, redis_prefix: str, case: tuple[int, list[Observation], list[tuple[float, int]]]
) -> None:
    max_age, obs, queries = case
    store = RedisStore(
        redis_url, uuid.uuid4().hex, max_age, resolution_seconds=RES, prefix=redis_prefix
    )
    try:
        for o in obs:
            store.record(o)
        for now, seconds in queries:
            assert store.counts(now, seconds) == _exact(obs, max_age, now, seconds)
    finally:
        store.clear()


@pytest.mark.redis
def test_redis_store_is_shared_between_trackers(redis_url: str, redis_prefix: str) -> None:
    d = SLODefinition(name="api", target=0.99, window_seconds=86400)

    def tracker() -> SLOTracker:
        store = RedisStore(redis_url, "api", d.window_seconds, prefix=redis_prefix)
        return SLOTracker(d, store=store, clock=lambda: T0)

    one, two = tracker(), tracker()  # two "processes" on one SLO
    for _ in range(99):
        one.record_success(at=T0 - 30)
    two.record_failure(at=T0 - 30)
    for t in (one, two):
        snap = t.snapshot()
        assert (snap.total, snap.failures) == (100, 1)
        assert snap.burn_rate == pytest.approx(1.0)
    assert len(one.store) == 100
    window = one.store.window(T0, 3600)
    assert len(window) == 100 and sum(not o.success for o in window) == 1
    one.store.trim(T0 + 86400)
    assert one.snapshot().total == 0


@pytest.mark.redis
def test_redis_keys_expire(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = RedisStore(redis_url, "exp", 120, resolution_seconds=60, prefix=redis_prefix)
    store.add(T0, False)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{redis_prefix}*"))
    assert len(keys) == 3  # the bucket, the newest mark, the running totals
    assert all(0 < client.ttl(k) <= 240 for k in keys)
    client.close()


def test_redis_store_unreachable_is_a_state_error() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", "x", 60)
    with pytest.raises(StateError, match="record failed"):
        store.add(T0, True)


@pytest.mark.redis
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=scenario())
def test_redis_store_on_a_cluster_agrees_with_exact_store(
    redis_cluster: Any, case: tuple[int, list[Observation], list[tuple[float, int]]]
) -> None:
    """On Redis Cluster: one SLO's keys share its hash tag, so every script runs in one slot
    (the scripts reach bucket keys they build from the prefix, not only their KEYS)."""
    from redis.cluster import RedisCluster

    max_age, obs, queries = case
    client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    store = RedisStore(client, uuid.uuid4().hex, max_age, resolution_seconds=RES)
    try:
        for o in obs:
            store.record(o)
        for now, seconds in queries:
            assert store.counts(now, seconds) == _exact(obs, max_age, now, seconds)
        assert len(store) == len(obs) or max_age < obs[-1].timestamp - obs[0].timestamp
        store.trim(obs[-1].timestamp + max_age + RES)  # every bucket ends before this
        assert len(store) == 0
    finally:
        store.clear()
        client.close()


@pytest.mark.redis
def test_redis_store_on_a_cluster_is_shared_between_trackers(redis_cluster: Any) -> None:
    from redis.cluster import RedisCluster

    d = SLODefinition(name=f"api-{uuid.uuid4().hex[:6]}", target=0.99, window_seconds=86400)
    clients = [RedisCluster(host="127.0.0.1", port=p) for p in redis_cluster.ports[:2]]
    trackers = [
        SLOTracker(d, store=RedisStore(c, d.name, d.window_seconds), clock=lambda: T0)
        for c in clients
    ]
    try:
        for _ in range(99):
            trackers[0].record_success(at=T0 - 30)
        trackers[1].record_failure(at=T0 - 30)
        for t in trackers:
            snap = t.snapshot()
            assert (snap.total, snap.failures) == (100, 1)
    finally:
        trackers[0].store.clear()
        for c in clients:
            c.close()
