"""Redis ledger storage hygiene: old window buckets go, counters and records expire.

The contract suite checks what the ledger answers; these check what it leaves in Redis (the
scripts keep per-call work small, so cleanup happens at specific moments, tested here).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from quota_helpers import Clock, delete_prefix, three_levels

from cloudcircuit.quota import Ledger

pytest.importorskip("redis")

P1U1 = {"project": "p1", "user": "u1"}
DAY_MS = 86_400_000


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[tuple[str, str]]:
    prefix = f"cc-test-layout-{uuid.uuid4().hex[:8]}:"
    sep = "&" if "?" in redis_url else "?"
    yield f"{redis_url}{sep}prefix={prefix}", prefix
    delete_prefix(redis_url, prefix)


def test_old_day_bucket_is_dropped_when_the_next_day_opens(
    redis_url: str, redis_prefix: tuple[str, str]
) -> None:
    import redis

    url, prefix = redis_prefix
    start = datetime(2026, 12, 1, 23, 59, 58, tzinfo=UTC).timestamp()
    clock = Clock(start)
    ledger = Ledger(url, three_levels(), clock=clock)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    user_key = f"{prefix}{{global}}:s:global/project=p1/user=u1:d"
    try:
        ledger.commit(ledger.reserve(P1U1, 1.0), 1.0)
        day = int(start * 1000) // DAY_MS
        assert client.hget(user_key, str(day)) == "1000000"
        clock.advance(3)  # the next day: its first commit opens a new bucket
        ledger.commit(ledger.reserve(P1U1, 0.5), 0.5)
        fields = client.hgetall(user_key)
        assert str(day) not in fields
        assert fields[str(day + 1)] == "500000"
        assert fields["h"] == "0"
        # counters outlive the last write by at least two days (and the day itself)
        expire_at = client.pexpiretime(user_key)
        assert expire_at >= int(clock() * 1000) + 2 * DAY_MS
        assert int(fields["x"]) <= expire_at
    finally:
        ledger.close()
        client.close()


def test_request_record_is_one_string_kept_for_keep_seconds(
    redis_url: str, redis_prefix: tuple[str, str]
) -> None:
    import redis

    url, prefix = redis_prefix
    ledger = Ledger(url, three_levels(), keep_seconds=120)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        held = ledger.reserve(P1U1, 1.0, request_id="r1", ttl=30)
        key = f"{prefix}{{global}}:r:global/project=p1/user=u1|r1"
        assert client.type(key) == "string"
        assert 120_000 < client.pttl(key) <= 150_000  # the hold's TTL + keep
        assert client.get(key).split("\n")[0] == "held"
        ledger.commit(held, 0.25)
        assert client.get(key).split("\n")[0] == "committed"
        assert 110_000 < client.pttl(key) <= 120_000  # keep, from the commit
        assert client.zcard(f"{prefix}{{global}}:exp") == 0  # no hold left to expire
    finally:
        ledger.close()
        client.close()
