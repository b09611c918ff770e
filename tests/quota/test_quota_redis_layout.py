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
        key = f"{prefix}{{global}}:q:global/project=p1/user=u1|r1"
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


def test_records_written_as_hashes_by_an_older_version_still_work(
    redis_url: str, redis_prefix: tuple[str, str]
) -> None:
    """Across an upgrade, holds and outcomes recorded by the hash-record scripts are honoured:
    a held one commits, a due one is given back by the purge, a denial replays."""
    import redis

    url, prefix = redis_prefix
    clock = Clock()
    ledger = Ledger(url, three_levels(), clock=clock)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    base = f"{prefix}{{global}}:q:global/project=p1/user=u1|"

    def as_hash(request_id: str, **fields: object) -> None:
        key = base + request_id
        ttl = max(client.pttl(key), 60_000)  # the reserve's, or a minute for a new record
        client.delete(key)
        client.hset(key, mapping={k: str(v) for k, v in fields.items()})
        client.pexpire(key, ttl)

    scopes = "\n".join(
        f"{prefix}{{global}}:s:{s}:d"
        for s in ("global", "global/project=p1", "global/project=p1/user=u1")
    )
    try:
        kept = ledger.reserve(P1U1, 1.0, request_id="kept", ttl=60)
        exp = int(kept.expires_at * 1000)
        as_hash("kept", state="held", amount=1_000_000, exp=exp, scopes=scopes)
        due = ledger.reserve(P1U1, 1.5, request_id="due", ttl=1)
        as_hash(
            "due",
            state="held",
            amount=1_500_000,
            exp=int(due.expires_at * 1000),
            scopes=scopes,
        )
        as_hash("old-denial", state="denied", idx=3, limit=3_000_000, committed=2_000_000,
                held=500_000, amount=2_000_000)  # fmt: skip
        clock.advance(2)  # "due" is past its TTL; "kept" is not
        user = ledger.usage(P1U1)[-1]  # the purge gives back the legacy hold of "due"
        assert (user.committed, user.held) == (0.0, 1.0)
        done = ledger.commit(kept, 0.75)
        assert (done.actual, done.late, done.replayed) == (0.75, False, False)
        assert ledger.commit(kept, 0.75).replayed
        assert ledger.usage(P1U1)[-1].committed == 0.75
        denied = ledger.reserve(P1U1, 0.1, request_id="old-denial")
        assert not denied.allowed and denied.replayed
        assert denied.denial is not None and denied.denial.limit == 3.0
    finally:
        ledger.close()
        client.close()


def test_a_shorter_hold_after_a_longer_one_still_expires_on_time(
    redis_prefix: tuple[str, str],
) -> None:
    """The purge marker (earliest possible expiry) follows a later but shorter hold, and
    after a purge it moves to the next hold due."""
    url, _ = redis_prefix
    clock = Clock()
    ledger = Ledger(url, three_levels(), clock=clock)
    try:
        ledger.reserve(P1U1, 1.0, ttl=60)  # sets the marker to now + 60 s
        ledger.reserve(P1U1, 0.5, ttl=1)  # due first: must lower it
        ledger.reserve(P1U1, 0.25, ttl=30)
        assert ledger.usage(P1U1)[-1].held == 1.75
        clock.advance(2)
        assert ledger.usage(P1U1)[-1].held == 1.25  # the 1 s hold went back
        clock.advance(29)
        assert ledger.usage(P1U1)[-1].held == 1.0  # then the 30 s one
        clock.advance(30)
        assert ledger.usage(P1U1)[-1].held == 0.0
    finally:
        ledger.close()


def test_each_script_carries_only_the_library_parts_it_names() -> None:
    """A script defines its helpers on every call, so a commit must not carry the purge."""
    from cloudcircuit.quota.backends.redis import SCRIPTS, script_source

    sources = {name: script_source(name) for name in SCRIPTS}
    assert "local function purge" in sources["reserve"]
    assert "local function purge" not in sources["commit"]
    assert "local function state_of" not in sources["release"]
    assert all(source.startswith("-- Prelude") for source in sources.values())


def test_each_operation_is_sent_only_the_arguments_it_reads(redis_prefix: tuple[str, str]) -> None:
    """prelude.lua: four scalars, then per-scope groups: five for reserve, charge, usage and
    limit, three (buckets and expiry) for a commit, none for a release."""
    url, _ = redis_prefix
    ledger = Ledger(url, three_levels())
    try:
        chain = ledger.chain(P1U1)
        backend = ledger.backend
        counts = {}
        for kind in ("reserve", "commit", "release", "charge", "usage"):
            keys, args = backend.keys_and_args(ledger._op(kind, chain, "r1", 0))  # type: ignore[attr-defined]
            assert len(keys) == 3 + 3  # record, expiries, limits, then one hash per scope
            counts[kind] = len(args)
        assert counts == {"reserve": 19, "commit": 13, "release": 4, "charge": 19, "usage": 19}
        held = ledger.reserve(P1U1, 1.0)
        assert ledger.commit(held, 0.5).actual == 0.5  # and the scripts read them right
        assert ledger.release(ledger.reserve(P1U1, 1.0)).status == "released"
    finally:
        ledger.close()
