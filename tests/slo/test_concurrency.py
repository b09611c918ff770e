"""Counts stay exact under concurrent writers: threads on a BucketedStore, processes on Redis."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid

import pytest

from cloudcircuit.slo import BucketedStore, RedisStore, SLODefinition, SLOTracker

T0 = 1_700_000_000.0


def test_threads_share_a_bucketed_store() -> None:
    store = BucketedStore(3600, resolution_seconds=10)
    tracker = SLOTracker(
        SLODefinition(name="a", target=0.9, window_seconds=3600, burn_rate_windows=(600,)),
        store=store,
    )

    def work(k: int) -> None:
        for i in range(5000):
            tracker.record(i % 10 != 0, at=T0 + (i + k) % 600)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    snap = tracker.snapshot(at=T0 + 600)
    assert (snap.total, snap.failures) == (20_000, 2_000)


def _record(url: str, name: str, prefix: str, n: int) -> None:
    store = RedisStore(url, name, 86400, prefix=prefix)
    for i in range(n):
        store.add(T0 + i, i % 4 != 0)


@pytest.mark.redis
def test_processes_share_one_slo_in_redis(redis_url: str) -> None:
    prefix = f"cc-test-detect:{uuid.uuid4().hex[:8]}:"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_record, args=(redis_url, "api", prefix, 400)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    store = RedisStore(redis_url, "api", 86400, prefix=prefix)
    try:
        assert all(p.exitcode == 0 for p in procs)
        assert store.counts(T0 + 400, 3600) == (800, 200)
    finally:
        store.clear()
