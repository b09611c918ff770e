"""Seasonal and streaming detectors: expectations that explain themselves, batch = per series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcircuit import guardrails
from cloudcircuit.detectors import (
    SeasonalSettings,
    StreamingSettings,
    default_season,
    detect,
    detect_all,
    evidence_for,
)
from cloudcircuit.errors import InputError
from cloudcircuit.spend import Granularity, SpendSeries

MONDAY = datetime(2026, 8, 3, tzinfo=UTC)


def weekly(days: int, seed: int = 1, noise: float = 0.03) -> np.ndarray:
    """~180 a weekday, x0.6 at weekends (the demo's shape), starting on a Monday."""
    rng = np.random.default_rng(seed)
    base = np.where(np.arange(days) % 7 >= 5, 108.0, 180.0)
    return base * (1 + noise * rng.standard_normal(days))


def hourly(hours: int, seed: int = 2) -> np.ndarray:
    """Business hours cost 3x the night, with noise."""
    rng = np.random.default_rng(seed)
    hour = np.arange(hours) % 24
    base = np.where((hour >= 8) & (hour < 20), 30.0, 10.0)
    return base * (1 + 0.03 * rng.standard_normal(hours))


def series(values: np.ndarray, gran: Granularity = Granularity.DAY, partial: bool = False):
    step = timedelta(seconds=gran.seconds)
    complete = np.ones(values.size, dtype=bool)
    complete[-1] = not partial
    return SpendSeries(
        scope={"account": "222222222222"},
        granularity=gran,
        starts=tuple(MONDAY + i * step for i in range(values.size)),
        amounts=values.astype(float),
        complete=complete,
        currency="USD",
    )


def test_seasonal_knows_weekends_from_weekdays() -> None:
    x = weekly(63)  # day 62 is a Sunday... index 62 % 7 == 6
    trace = detect_all("seasonal", x, granularity="day")
    # nine weeks of normal weekly rhythm: no alert anywhere, weekend dips included
    assert not trace.fired.any()
    judged = ~np.isnan(trace.expected[0])
    weekend = (np.arange(63) % 7 >= 5) & judged
    assert np.allclose(trace.expected[0][weekend], 108, rtol=0.12)
    assert np.allclose(trace.expected[0][judged & ~weekend], 180, rtol=0.12)
    # the 0.3 spike rule over the same history flags Mondays after weekends as spikes
    monday = 56
    assert guardrails.check_anomaly_spike(list(x[monday - 3 : monday + 1]), 1.5).is_spike is False
    # ... and a weekday at weekend level is a drop the seasonal detector reports with "both"
    y = x.copy()
    y[-3] = 108.0  # a Friday at weekend level
    both = detect("seasonal", y[:-2], params={"direction": "both"}, granularity="day")
    up = detect("seasonal", y[:-2], granularity="day")
    assert both.fired[0] and not up.fired[0]


def test_seasonal_fires_on_a_runaway_with_its_expectation() -> None:
    x = weekly(61)
    x[-2:] *= 6  # the forgotten GPU cluster
    r = detect("seasonal", x, granularity=Granularity.DAY)
    assert r.fired[0]
    assert r.expected[0] == pytest.approx(180 if (60 % 7) < 5 else 108, rel=0.08)
    assert r.observed[0] == x[-1]
    assert r.score[0] > 10
    assert r.expected[0] < r.threshold[0] < r.observed[0]


def test_seasonal_ignores_a_slow_trend() -> None:
    days = np.arange(90)
    rng = np.random.default_rng(4)
    growth = 820 * 1.012 ** (days - 89) * np.where(days % 7 >= 5, 0.85, 1.0)
    x = growth * (1 + 0.02 * rng.standard_normal(90))
    assert not detect_all("seasonal", x, granularity="day").fired.any()


def test_streaming_learns_a_daily_cycle_and_fires_on_a_spike() -> None:
    x = hourly(24 * 14)
    quiet = detect_all("streaming", x, granularity="hour")
    assert not quiet.fired.any()
    spiked = x.copy()
    spiked[300] *= 5
    trace = detect_all("streaming", spiked, granularity=Granularity.HOUR)
    assert np.flatnonzero(trace.fired[0]).tolist() == [300]
    assert trace.expected[0, 300] == pytest.approx(x[300], rel=0.1)
    # the spike was clipped: the next day at the same hour is still judged against normal
    assert trace.expected[0, 324] == pytest.approx(x[324], rel=0.1)


def test_cooldown_gives_one_alert_per_episode_then_relearns() -> None:
    x = hourly(24 * 14)
    x[250:] *= 4  # a lasting shift
    plain = detect_all("streaming", x, granularity="hour")
    assert plain.fired[0, 250:].sum() > 10  # without a cooldown a runaway keeps firing
    muted = detect_all("streaming", x, {"cooldown": 24}, granularity="hour")
    hits = np.flatnonzero(muted.fired[0]).tolist()
    assert hits[0] == 250
    assert len(hits) <= 2  # one alert, the state relearns during the cooldown
    assert muted.score[0, 251:275].max() == 0.0
    seasonal = detect_all("seasonal", x, {"cooldown": 24, "season": 24})
    assert np.flatnonzero(seasonal.fired[0]).tolist()[0] == 250


def test_regular_series_do_not_alarm_on_a_cent() -> None:
    flat = np.full(60, 100.0)
    flat[-1] = 100.01
    for name in ("seasonal", "streaming"):
        assert not detect(name, flat, granularity="day").fired[0]
    zero = np.zeros(60)
    assert not detect("streaming", zero).fired[0]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=2, max_value=50), min_size=1, max_size=6),
    seed=st.integers(0, 1000),
    name=st.sampled_from(["seasonal", "streaming"]),
)
def test_batch_form_equals_per_series_form(lengths: list[int], seed: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    t = max(lengths)
    matrix = rng.gamma(4.0, 25.0, size=(len(lengths), t))
    for i, n in enumerate(lengths):
        matrix[i, n:] = rng.gamma(4.0, 1000.0, size=t - n)  # padding must not matter
    params = {"season": 3, "seasons": 2} if name == "seasonal" else {"season": 3}
    batch = detect(name, matrix, lengths, params)
    for i, n in enumerate(lengths):
        one = detect(name, matrix[i, :n], params=params)
        for field in ("expected", "observed", "score", "threshold", "fired"):
            got, want = getattr(batch, field)[i], getattr(one, field)[0]
            assert got == want or (np.isnan(got) and np.isnan(want)), (field, i)


def test_evidence_explains_itself_and_skips_the_partial_bucket() -> None:
    x = weekly(61)
    x[-2] *= 6
    x[-1] = 5.0  # today, half-filled: it must not read as a drop, nor be judged
    ev = evidence_for("seasonal", series(x, partial=True), SeasonalSettings(action="block"))
    assert ev.rule == "seasonal" and ev.fired and ev.action == "block"
    assert ev.observed == x[-2]
    assert ev.expected is not None and ev.expected < ev.threshold < ev.observed
    assert ev.score is not None and ev.score > 4
    assert "expected" in ev.detail and ev.data["last_complete"] == series(x).starts[-2].isoformat()
    quiet = evidence_for("streaming", series(hourly(24 * 5), Granularity.HOUR), {"cooldown": 2})
    assert not quiet.fired and quiet.expected is not None
    assert "warming up" in evidence_for("seasonal", series(weekly(10))).detail
    assert "not enough" in evidence_for("seasonal", series(weekly(1))).detail


def test_bad_input_is_named() -> None:
    with pytest.raises(InputError, match="unknown detector 'prophet'"):
        detect("prophet", np.ones(5))
    with pytest.raises(InputError, match=r"detectors\.seasonal"):
        detect("seasonal", np.ones(5), params={"z_threshold": -1})
    with pytest.raises(InputError, match=r"values\[0, 2\]"):
        detect("streaming", [1.0, 2.0, float("nan")])
    with pytest.raises(InputError, match="no points"):
        detect("seasonal", np.zeros((2, 0)))
    with pytest.raises(InputError, match="lengths"):
        detect("streaming", np.ones((2, 5)), lengths=[5, 6])
    assert default_season("day") == 7 and default_season("hour") == 24
    assert default_season(None) == 7 and default_season("month") == 12
    assert StreamingSettings().enabled and SeasonalSettings().direction == "up"
