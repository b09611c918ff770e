"""Multi-window, multi-burn-rate alerting on constructed spend series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloudcircuit.burn import (
    BurnWindow,
    BurnWindowSpec,
    BurnWindowsSettings,
    default_windows,
    evaluate_burn,
    format_duration,
    parse_duration,
    period_seconds,
)
from cloudcircuit.errors import InputError
from cloudcircuit.spend import Granularity, SpendSeries

START = datetime(2026, 11, 1, tzinfo=UTC)  # November: 30 days
MONTH_BUDGET = 720.0  # 1 USD per hour on pace


def _series(
    amounts: list[float], granularity: Granularity = Granularity.HOUR, incomplete_last: int = 0
) -> SpendSeries:
    step = timedelta(seconds=granularity.seconds)
    n = len(amounts)
    complete = np.ones(n, dtype=bool)
    if incomplete_last:
        complete[-incomplete_last:] = False
    return SpendSeries(
        scope={"service": "ec2"},
        granularity=granularity,
        starts=tuple(START + i * step for i in range(n)),
        amounts=np.array(amounts, dtype=float),
        complete=complete,
        currency="USD",
    )


def _by_pair(evidence: list) -> dict[str, object]:  # type: ignore[type-arg]
    return {e.data["pair"]: e for e in evidence}


def test_hourly_defaults_never_go_below_one_bucket() -> None:
    windows = default_windows(Granularity.HOUR, "month")
    assert [w.label for w in windows] == ["1h/1h", "6h/1h", "1d/2h"]
    assert [w.factor for w in windows] == [14.4, 6.0, 3.0]
    assert all(w.short >= 3600 for w in windows)
    daily = default_windows("day", "month")
    assert all(w.short % 86400 == 0 and w.long % 86400 == 0 for w in daily)
    assert [w.label for w in daily] == ["2d/1d", "3d/1d"]
    assert default_windows("month", "month")[0].factor == 1.0
    with pytest.raises(InputError, match="period"):
        default_windows("hour", "year")


def test_fast_burn_fires_the_fast_pair_within_its_short_window() -> None:
    baseline = [1.0] * 72
    # the burn starts in the latest bucket, still filling: nothing fires yet
    filling = evaluate_burn(_series([*baseline, 14.4], incomplete_last=1), MONTH_BUDGET, "month")
    assert not any(e.fired for e in filling)
    # one short window (one hour bucket) later, the bucket is complete: the fast pair fires
    ev = _by_pair(evaluate_burn(_series([*baseline, 14.4]), MONTH_BUDGET, "month"))
    fast = ev["1h/1h"]
    assert fast.fired and fast.action == "block"
    assert fast.observed == pytest.approx(14.4)
    assert fast.threshold == 14.4
    assert fast.expected == pytest.approx(1.0)
    assert fast.score == pytest.approx(1.0)
    assert fast.data["burn_long"] == pytest.approx(14.4)
    # slower pairs need their long windows to burn too
    assert not ev["6h/1h"].fired
    assert not ev["1d/2h"].fired


def test_brief_spike_absorbed_by_the_long_window_does_not_fire() -> None:
    # 8x for one hour: the 6h/1h short window burns 8x >= 6, its long window only ~2.2x
    ev = _by_pair(evaluate_burn(_series([1.0] * 48 + [8.0]), MONTH_BUDGET, "month"))
    assert ev["6h/1h"].data["burn_short"] == pytest.approx(8.0)
    assert ev["6h/1h"].data["burn_long"] == pytest.approx(13 / 6)
    assert not any(e.fired for e in ev.values())
    # daily data: one day at 8x is absorbed by the 2-day window; two days fire it
    per_day = MONTH_BUDGET / 30
    one = _by_pair(
        evaluate_burn(_series([per_day] * 9 + [8 * per_day], Granularity.DAY), 720, "month")
    )
    assert not one["2d/1d"].fired and one["2d/1d"].data["burn_short"] == pytest.approx(8.0)
    two = _by_pair(
        evaluate_burn(_series([per_day] * 8 + [8 * per_day] * 2, Granularity.DAY), 720, "month")
    )
    assert two["2d/1d"].fired and two["3d/1d"].fired


def test_half_filled_latest_bucket_neither_fires_nor_hides() -> None:
    # a late, half-filled bucket with a huge partial amount is not judged
    ev = evaluate_burn(_series([1.0] * 30 + [500.0], incomplete_last=1), MONTH_BUDGET, "month")
    assert not any(e.fired for e in ev)
    assert all(e.data["complete_buckets"] == 30 for e in ev)
    # ... and a half-filled, nearly empty bucket after a real burn does not hide it
    burning = [1.0] * 30 + [20.0] * 6
    ev = _by_pair(evaluate_burn(_series([*burning, 0.5], incomplete_last=1), MONTH_BUDGET, "month"))
    assert ev["1h/1h"].fired and ev["6h/1h"].fired


def test_not_enough_complete_data_is_reported_not_fired() -> None:
    ev = _by_pair(evaluate_burn(_series([100.0] * 3), MONTH_BUDGET, "month"))
    assert ev["1h/1h"].fired
    assert not ev["6h/1h"].fired and "needs 6 complete buckets, has 3" in ev["6h/1h"].detail


def test_day_period_and_custom_windows() -> None:
    # a 24 USD/day budget is 1 USD/hour; 3 hours at 5 USD burns 5x
    pair = BurnWindow(long=3 * 3600, short=3600, factor=5.0)
    (ev,) = evaluate_burn(_series([1.0] * 10 + [5.0] * 3), 24.0, "day", [pair])
    assert ev.fired and ev.action == "throttle" and ev.data["pair"] == "3h/1h"
    with pytest.raises(InputError, match="whole number"):
        evaluate_burn(_series([1.0] * 10), 24.0, "day", [BurnWindow(5400, 1800, 2.0)])
    with pytest.raises(InputError, match="budget amount"):
        evaluate_burn(_series([1.0] * 10), 0.0, "day")
    with pytest.raises(InputError, match="must not exceed"):
        BurnWindow(3600, 7200, 2.0)
    with pytest.raises(InputError, match="factor"):
        BurnWindow(3600, 3600, 0.0)


def test_month_period_uses_the_calendar_month() -> None:
    assert period_seconds("day") == 86400
    assert period_seconds("month", datetime(2026, 2, 10, tzinfo=UTC)) == 28 * 86400
    assert period_seconds("month", datetime(2026, 1, 10, tzinfo=UTC)) == 31 * 86400
    with pytest.raises(InputError):
        period_seconds("week")


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("5m") == 300
    assert parse_duration(" 1.5h ") == 5400
    assert parse_duration("3d") == 3 * 86400
    assert parse_duration(60) == 60
    for bad in ("", "1y", "h", "-1h", "0m", 0, True):
        with pytest.raises(InputError):
            parse_duration(bad)  # type: ignore[arg-type]
    assert [format_duration(s) for s in (3600, 5400, 86400, 604800, 30, 1.5)] == [
        "1h",
        "90m",
        "1d",
        "1w",
        "30s",
        "1.5s",
    ]


def test_policy_settings() -> None:
    cfg = BurnWindowsSettings.model_validate(
        {"windows": [{"long": "6h", "short": "1h", "factor": 6, "action": "block"}]}
    )
    assert cfg.enabled
    assert cfg.resolve("hour", "month") == [BurnWindow(21600, 3600, 6.0, "block")]
    assert BurnWindowsSettings().resolve("day", "month") == list(default_windows("day", "month"))
    spec = BurnWindowSpec(long=7200, short="1h", factor=2)
    assert spec.to_window().label == "2h/1h"
    with pytest.raises(ValidationError, match="not a duration"):
        BurnWindowSpec(long="6 hours", short="1h", factor=6)
    with pytest.raises(ValidationError):
        BurnWindowsSettings.model_validate({"windows": [], "extra": 1})
    with pytest.raises(ValidationError, match="must not exceed long window 1h"):
        BurnWindowSpec(long="1h", short="2h", factor=2)


@settings(max_examples=100, deadline=None)
@given(
    amounts=st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=80),
    late=st.lists(st.floats(0, 5000, allow_nan=False), min_size=0, max_size=5),
    budget=st.floats(10, 10_000, allow_nan=False),
)
def test_late_buckets_never_change_the_verdict(
    amounts: list[float], late: list[float], budget: float
) -> None:
    """Property: incomplete trailing buckets, whatever they hold, change no evidence; and each
    burn rate is the window's mean spend over the budget's hourly pace."""
    base = evaluate_burn(_series(amounts), budget, "month")
    with_late = evaluate_burn(
        _series([*amounts, *late], incomplete_last=len(late)), budget, "month"
    )
    assert [e.to_dict() for e in base] == [e.to_dict() for e in with_late]
    pace = budget / (30 * 24)
    for e in base:
        n = int(e.data["long_seconds"] // 3600)
        if len(amounts) >= n:
            assert e.data["burn_long"] == pytest.approx(sum(amounts[-n:]) / n / pace)
            assert e.fired == (min(e.data["burn_long"], e.data["burn_short"]) >= e.threshold)
        else:
            assert not e.fired
