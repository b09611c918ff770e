"""The ledger contract, run against every backend (memory, SQLite, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest
from quota_helpers import Clock, three_levels

from cloudcircuit.errors import InputError, QuotaExceededError, ReservationError
from cloudcircuit.quota import Hierarchy, Level, Window
from cloudcircuit.quota.results import encode_token

P1U1 = {"project": "p1", "user": "u1"}


def _usage(ledger, scope):  # type: ignore[no-untyped-def]
    return {u.level: (u.committed, u.held, u.limit) for u in ledger.usage(scope)}


def test_reserve_commit_charges_every_scope(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    held = ledger.reserve(P1U1, 2.0)
    assert held.allowed and not held.replayed and held.amount == 2.0
    assert _usage(ledger, P1U1) == {
        "global": (0.0, 2.0, 100.0),
        "project": (0.0, 2.0, 10.0),
        "user": (0.0, 2.0, 3.0),
    }
    done = ledger.commit(held, 1.25)
    assert (done.actual, done.late, done.replayed) == (1.25, False, False)
    assert _usage(ledger, P1U1) == {
        "global": (1.25, 0.0, 100.0),
        "project": (1.25, 0.0, 10.0),
        "user": (1.25, 0.0, 3.0),
    }


def test_denial_names_the_scope_and_its_numbers(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    ledger.commit(ledger.reserve(P1U1, 2.5), 2.5)
    denied = ledger.reserve(P1U1, 1.0)
    assert not denied.allowed
    assert denied.denial is not None
    d = denied.denial
    assert (d.reason, d.level, d.scope, d.entity) == (
        "limit",
        "user",
        "global/project=p1/user=u1",
        "u1",
    )
    assert (d.limit, d.committed, d.held, d.requested) == (3.0, 2.5, 0.0, 1.0)
    with pytest.raises(QuotaExceededError, match="user global/project=p1/user=u1"):
        denied.raise_for_denial()
    # another user of p1 passes the user level, and the project level refuses at its own limit
    ledger.commit(ledger.reserve({"project": "p1", "user": "u2"}, 3.0), 3.0)
    ledger.commit(ledger.reserve({"project": "p1", "user": "u3"}, 3.0), 3.0)
    outer = ledger.reserve({"project": "p1", "user": "u4"}, 2.0)
    assert outer.denial is not None and outer.denial.level == "project"
    assert outer.denial.committed == 8.5
    # nothing was held by the denials
    assert _usage(ledger, {"project": "p1", "user": "u4"})["project"] == (8.5, 0.0, 10.0)


def test_actual_above_estimate_is_charged_below_gives_back(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels(user=None))
    ledger.commit(ledger.reserve(P1U1, 1.0), 4.0)
    ledger.commit(ledger.reserve(P1U1, 5.0), 0.5)
    assert _usage(ledger, P1U1)["project"] == (4.5, 0.0, 10.0)


def test_release_gives_the_hold_back(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    held = ledger.reserve(P1U1, 3.0)
    assert not ledger.reserve(P1U1, 0.5).allowed
    first = ledger.release(held)
    assert (first.status, first.replayed) == ("released", False)
    assert ledger.release(held.token).replayed
    assert _usage(ledger, P1U1)["user"] == (0.0, 0.0, 3.0)
    with pytest.raises(ReservationError) as info:
        ledger.commit(held, 1.0)
    assert info.value.state == "released"
    assert ledger.reserve(P1U1, 3.0).allowed


def test_hold_expires_by_ttl_and_a_late_commit_is_still_charged(make_ledger) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    ledger = make_ledger(three_levels(), clock=clock)
    held = ledger.reserve(P1U1, 3.0, ttl=5)
    assert not ledger.reserve(P1U1, 1.0).allowed
    clock.advance(6)
    assert _usage(ledger, P1U1)["user"] == (0.0, 0.0, 3.0)
    assert ledger.reserve(P1U1, 1.0, request_id="after-expiry").allowed
    late = ledger.commit(held, 2.0)
    assert late.late and late.actual == 2.0
    assert _usage(ledger, P1U1)["user"] == (2.0, 1.0, 3.0)
    with pytest.raises(ReservationError) as info:
        ledger.release(held)
    assert info.value.state == "committed"
    expiring = ledger.reserve({"project": "p1", "user": "u2"}, 0.5, ttl=1)
    clock.advance(2)
    assert ledger.release(expiring).status == "expired"


def test_request_id_replays_the_first_outcome(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    first = ledger.reserve(P1U1, 2.0, request_id="req-1")
    again = ledger.reserve(P1U1, 2.9, request_id="req-1")
    assert again.replayed and again.amount == 2.0 and again.expires_at == first.expires_at
    assert ledger.commit(first, 1.5).replayed is False
    replay = ledger.commit(first, 2.5)
    assert (replay.replayed, replay.actual) == (True, 1.5)
    assert ledger.reserve(P1U1, 2.0, request_id="req-1").replayed
    assert _usage(ledger, P1U1)["user"] == (1.5, 0.0, 3.0)
    charged = ledger.charge(P1U1, 0.25, request_id="chg-1")
    assert not charged.replayed
    assert ledger.charge(P1U1, 0.25, request_id="chg-1").replayed
    assert _usage(ledger, P1U1)["user"] == (1.75, 0.0, 3.0)
    with pytest.raises(ReservationError):
        ledger.charge(P1U1, 0.25, request_id="req-1")


def test_a_charge_id_cannot_be_reserved_or_committed(make_ledger) -> None:  # type: ignore[no-untyped-def]
    """A request id used by a charge is refused by reserve and commit, never half-read."""
    ledger = make_ledger(three_levels())
    ledger.charge(P1U1, 0.5, request_id="chg-2")
    with pytest.raises(ReservationError, match="already used for a charge") as info:
        ledger.reserve(P1U1, 1.0, request_id="chg-2")
    assert info.value.state == "charged"
    token = encode_token("chg-2", (("project", "p1"), ("user", "u1")))
    with pytest.raises(ReservationError, match="it is charged"):
        ledger.commit(token, 1.0)
    assert _usage(ledger, P1U1)["user"][:2] == (0.5, 0.0)  # charged once, nothing held


def test_a_denial_is_replayed_even_after_room_appears(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    held = ledger.reserve(P1U1, 3.0)
    denied = ledger.reserve(P1U1, 1.0, request_id="d-1")
    ledger.release(held)
    again = ledger.reserve(P1U1, 1.0, request_id="d-1")
    assert not again.allowed and again.replayed and again.denial == denied.denial


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, -math.inf, "1", True])
def test_bad_amounts_are_rejected(make_ledger, bad) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    with pytest.raises(InputError, match="estimate"):
        ledger.reserve(P1U1, bad)
    with pytest.raises(InputError, match="amount"):
        ledger.charge(P1U1, bad)
    held = ledger.reserve(P1U1, 1.0)
    with pytest.raises(InputError, match="actual"):
        ledger.commit(held, bad)
    with pytest.raises(InputError, match="limit"):
        ledger.set_limit({"project": "p1"}, bad)
    assert _usage(ledger, P1U1)["user"] == (0.0, 1.0, 3.0)


def test_calendar_day_resets_at_utc_midnight(make_ledger) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC).timestamp())
    ledger = make_ledger(three_levels(), clock=clock)
    ledger.commit(ledger.reserve(P1U1, 3.0), 3.0)
    assert not ledger.reserve(P1U1, 0.5).allowed
    clock.advance(3)  # 00:00:01 the next day
    assert _usage(ledger, P1U1)["user"] == (0.0, 0.0, 3.0)
    assert ledger.reserve(P1U1, 3.0).allowed


def test_calendar_month_window(make_ledger) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC).timestamp())
    monthly = Hierarchy(levels=(Level(name="team", limit=10.0, window=Window(kind="month")),))
    ledger = make_ledger(monthly, clock=clock)
    ledger.charge({"team": "a"}, 9.0)
    clock.advance(1800)  # still November
    assert not ledger.reserve({"team": "a"}, 2.0).allowed
    clock.advance(3600)  # December 1st
    assert ledger.usage({"team": "a"})[0].committed == 0.0
    assert ledger.reserve({"team": "a"}, 2.0).allowed


def test_rolling_window_slides(make_ledger) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(1_800_000_000.0)
    rolling = Hierarchy(levels=(Level(name="key", limit=5.0, window="rolling:60"),))
    ledger = make_ledger(rolling, clock=clock)
    ledger.charge({"key": "k"}, 3.0)
    clock.advance(30)
    ledger.charge({"key": "k"}, 2.0)
    assert not ledger.reserve({"key": "k"}, 0.5).allowed
    clock.advance(31)  # the first charge left the 60 s window, the second has not
    assert ledger.usage({"key": "k"})[0].committed == 2.0
    assert ledger.reserve({"key": "k"}, 3.0).allowed
    clock.advance(60)
    assert ledger.usage({"key": "k"})[0].committed == 0.0


def test_any_chain_with_overrides_and_runtime_limits(make_ledger) -> None:  # type: ignore[no-untyped-def]
    chain = Hierarchy(
        levels=(
            Level(name="org", limit=50.0),
            Level(name="team", limit=5.0),
            Level(name="key"),
        ),
        overrides={"team=big": 20.0, "org=acme/team=small": 1.0},
    )
    ledger = make_ledger(chain)
    scope = {"org": "acme", "team": "big", "key": "k1"}
    assert [u.limit for u in ledger.usage(scope)] == [50.0, 20.0, None]
    assert ledger.usage({"org": "acme", "team": "small"})[-1].limit == 1.0
    assert ledger.usage({"org": "other", "team": "small"})[-1].limit == 5.0
    ledger.set_limit({"org": "acme", "team": "big", "key": "k1"}, 0.5)
    assert not ledger.reserve(scope, 1.0).allowed
    ledger.set_limit({"org": "acme", "team": "big", "key": "k1"}, None)  # stored: unlimited
    assert ledger.reserve(scope, 1.0).allowed
    ledger.set_limit({"org": "acme", "team": "big"}, 2.0)
    assert not ledger.reserve(scope, 1.5).allowed
    ledger.set_limit({"org": "acme", "team": "big"}, None, clear=True)
    assert ledger.usage(scope)[1].limit == 20.0


def test_scope_errors_name_the_level(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    with pytest.raises(InputError, match="unknown level"):
        ledger.reserve({"team": "x"}, 1.0)
    with pytest.raises(InputError, match=r"scope\.user"):
        ledger.reserve({"project": "p1", "user": "a/b"}, 1.0)
    with pytest.raises(InputError, match="request_id"):
        ledger.reserve(P1U1, 1.0, request_id="has space")
    with pytest.raises(InputError, match="ttl"):
        ledger.reserve(P1U1, 1.0, ttl=0)
    with pytest.raises(ReservationError) as info:
        ledger.commit(encode_token("never-made", tuple(P1U1.items())), 1.0)
    assert info.value.state == "unknown"
    with pytest.raises(InputError, match="reservation_id"):
        ledger.release("not-a-token")


def test_missing_levels_are_skipped_and_user_can_span_projects(make_ledger) -> None:  # type: ignore[no-untyped-def]
    chain = Hierarchy(
        levels=(
            Level(name="global", shared=True, limit=100.0),
            Level(name="project", limit=10.0),
            Level(name="user", limit=3.0, nested=False, required=True),
        )
    )
    ledger = make_ledger(chain)
    ledger.charge({"project": "a", "user": "u"}, 2.0)
    ledger.charge({"project": "b", "user": "u"}, 0.5)
    ledger.charge({"user": "u"}, 0.25)
    assert [u.scope for u in ledger.usage({"user": "u"})] == ["global", "global/user=u"]
    assert ledger.usage({"user": "u"})[-1].committed == 2.75
    assert not ledger.reserve({"project": "c", "user": "u"}, 0.5).allowed
    with pytest.raises(InputError, match=r"scope\.user: is required"):
        ledger.reserve({"project": "a"}, 1.0)


def test_charge_reports_scopes_left_over_their_limit(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())
    result = ledger.charge(P1U1, 4.0)
    assert result.over == ("global/project=p1/user=u1",)
    assert _usage(ledger, P1U1)["user"] == (4.0, 0.0, 3.0)
    assert ledger.usage(P1U1)[-1].remaining == 0.0


def test_async_twins_share_the_ledger(make_ledger) -> None:  # type: ignore[no-untyped-def]
    ledger = make_ledger(three_levels())

    async def lifecycle() -> tuple[float, float]:
        held = await ledger.areserve(P1U1, 2.0, request_id="a-1")
        replay = await ledger.areserve(P1U1, 2.0, request_id="a-1")
        assert replay.replayed
        done = await ledger.acommit(held, 1.0)
        other = await ledger.areserve(P1U1, 1.0)
        await ledger.arelease(other)
        await ledger.acharge(P1U1, 0.5)
        await ledger.aset_limit({"project": "p1"}, 7.0)
        usage = await ledger.ausage(P1U1)
        return done.actual, usage[-1].committed

    assert asyncio.run(lifecycle()) == (1.0, 1.5)
    assert _usage(ledger, P1U1) == {
        "global": (1.5, 0.0, 100.0),
        "project": (1.5, 0.0, 7.0),
        "user": (1.5, 0.0, 3.0),
    }


def test_sqlite_sweep_drops_old_buckets_and_outcomes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from cloudcircuit.quota import Ledger

    clock = Clock(1_800_000_000.0)
    rolling = Hierarchy(levels=(Level(name="key", limit=None, window="rolling:60"),))
    db = tmp_path / "sweep.db"
    ledger = Ledger(f"sqlite:///{db}", rolling, clock=clock, keep_seconds=60)
    for _ in range(1000):  # the 1000th operation of this thread sweeps
        ledger.charge({"key": "k"}, 0.01)
        clock.advance(2)
    assert ledger.usage({"key": "k"})[0].committed == pytest.approx(0.29)  # t-2 .. t-58
    with sqlite3.connect(db) as conn:
        buckets = conn.execute("SELECT COUNT(*) FROM quota_committed").fetchone()[0]
        outcomes = conn.execute("SELECT COUNT(*) FROM quota_requests").fetchone()[0]
    assert buckets <= 61  # one bucket per second of the window, nothing older
    assert outcomes < 200  # outcomes past their 60 s retention are gone
