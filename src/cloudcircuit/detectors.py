"""Anomaly detectors that explain themselves: an expected value, the observed one, a score.

Two detectors go past the 0.3 mean / MAD / percentile rules:

``seasonal``
    Weekday-aware (more generally, season-aware). The expectation for bucket ``t`` is the
    median, over the last ``seasons`` seasons, of the value one season back shifted by how much
    the level (median of the last season) moved since: ``x[t-kP] + L(t) - L(t-kP)``. Weekend spend
    is compared with weekend spend, and a slow trend does not read as an anomaly. The scale is
    the mean absolute residual of the recent past (as a standard deviation), floored at a
    fraction of the expectation so that a very regular series does not alarm on a cent.

``streaming``
    A robust streaming Holt-Winters (level + additive season, no trend) suited to hourly data:
    O(1) state per series and per step, updates winsorised at ``clip`` scales so a spike does not
    drag the baseline, and an exponentially weighted absolute deviation as its scale. During a
    ``cooldown`` after an alert the state follows the data unclipped (a lasting shift becomes
    the new normal).

Both take a ``cooldown`` (points muted after an alert: one alert per episode, not one per
bucket; 0 by default, so a runaway keeps firing scan after scan).

Each has a vectorized form over a matrix of series ``(N, T)`` (what :mod:`cloudcircuit.batch`
and the NAB runner call: :func:`detect` judges each row's latest point, :func:`detect_all`
every point) and a per-series form, :func:`evidence_for`, that returns an
:class:`~cloudcircuit.decision.Evidence`.

Scores are z-like: (observed - expected) / scale, signed for ``direction="up"`` (spend only
alarms upwards) and absolute for ``"both"``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from cloudcircuit.decision import Evidence
from cloudcircuit.errors import InputError
from cloudcircuit.spend import Granularity, SpendSeries

__all__ = [
    "DETECTORS",
    "DetectorArrays",
    "DetectorTrace",
    "SeasonalSettings",
    "StreamingSettings",
    "default_season",
    "detect",
    "detect_all",
    "evidence_for",
    "seasonal_trace",
    "streaming_trace",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Action = Literal["throttle", "block"]
Direction = Literal["up", "both"]

#: mean absolute deviation -> standard deviation for normal data
_MAD_TO_SIGMA = math.sqrt(math.pi / 2)
#: median absolute deviation -> standard deviation for normal data
_MAD_TO_SIGMA_MEDIAN = 1.4826


def default_season(granularity: Granularity | str | None) -> int:
    """Buckets per season: a week of days (weekday-aware), a day of hours, a year of months."""
    if granularity is None:
        return 7
    return {"day": 7, "hour": 24, "month": 12}[Granularity(granularity).value]


class _DetectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(default=True, description="Run this detector.")
    action: Action = Field(default="throttle", description="What it asks for when it fires.")
    season: int | None = Field(
        default=None,
        ge=1,
        description="Buckets per season; default from the granularity (day 7, hour 24, month 12).",
    )
    z_threshold: float = Field(default=4.0, gt=0, description="Score at which it fires.")
    direction: Direction = Field(
        default="up", description="'up': only spend above expectation alarms; 'both': either."
    )
    min_relative_scale: float = Field(
        default=0.05,
        ge=0,
        description="Scale floor as a fraction of the expectation (a regular series is not "
        "alarmed by a cent).",
    )
    min_scale: float = Field(default=0.0, ge=0, description="Absolute scale floor (currency).")
    min_baseline: float = Field(
        default=0.0, ge=0, description="Do not fire while the expectation is below this."
    )
    cooldown: int = Field(
        default=0, ge=0, description="Points muted after an alert (one alert per episode)."
    )


class SeasonalSettings(_DetectorSettings):
    """``detectors.seasonal``: the weekday-aware detector."""

    seasons: int = Field(default=4, ge=1, description="Seasons of history the median uses.")


class StreamingSettings(_DetectorSettings):
    """``detectors.streaming``: the streaming robust Holt-Winters detector for hourly data."""

    alpha: float = Field(default=0.05, gt=0, le=1, description="Level smoothing.")
    gamma: float = Field(default=0.2, gt=0, le=1, description="Season smoothing.")
    beta: float = Field(default=0.05, gt=0, le=1, description="Scale (abs deviation) smoothing.")
    clip: float = Field(default=3.0, gt=0, description="Winsorise updates at this many scales.")
    warmup: int | None = Field(
        default=None, ge=1, description="Points before judging (default: two seasons, >= 8)."
    )


DETECTORS: dict[str, type[_DetectorSettings]] = {
    "seasonal": SeasonalSettings,
    "streaming": StreamingSettings,
}


@dataclass(frozen=True, slots=True)
class DetectorArrays:
    """One detector's verdict on the latest point of each of N series."""

    expected: FloatArray
    observed: FloatArray
    score: FloatArray
    threshold: FloatArray
    fired: BoolArray


@dataclass(frozen=True, slots=True)
class DetectorTrace:
    """A detector run over every point of N series: arrays of shape ``(N, T)``.

    ``expected`` is NaN where the detector has no expectation yet (warm-up); ``score`` is 0
    there and during a cooldown; ``scale`` is the (floored) scale the score divides by.
    """

    expected: FloatArray
    scale: FloatArray
    score: FloatArray
    fired: BoolArray


def _settings(name: str, params: Any) -> _DetectorSettings:
    cls = DETECTORS.get(name)
    if cls is None:
        raise InputError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if isinstance(params, BaseModel):
        params = params.model_dump(exclude_unset=True)
    if isinstance(params, Mapping):
        try:
            return cls.model_validate(dict(params))
        except Exception as exc:  # pydantic ValidationError: name the detector
            raise InputError(f"detectors.{name}: {exc}") from None
    raise InputError(f"detectors.{name}: settings must be a mapping, got {type(params).__name__}")


def _matrix(values: Any) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError(f"values must be a (N, T) matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        row, col = (int(x[0]) for x in np.nonzero(~np.isfinite(arr)))
        raise InputError(f"values[{row}, {col}] is {arr[row, col]} (not a finite number)")
    return arr


def _floor_scale(scale: FloatArray, expected: FloatArray, cfg: _DetectorSettings) -> FloatArray:
    floor = np.maximum(cfg.min_relative_scale * np.abs(expected), cfg.min_scale)
    out = np.maximum(scale, floor)
    # a perfectly flat, zero series still needs a positive scale
    return np.where(out > 0, out, 1e-9)


def _z(values: FloatArray, expected: FloatArray, scale: FloatArray, cfg: _DetectorSettings) -> Any:
    z = (values - expected) / scale
    z = np.abs(z) if cfg.direction == "both" else z
    return np.where(expected >= cfg.min_baseline, z, 0.0)


def _rolling_mean_prev(x: FloatArray, width: int) -> FloatArray:
    """Mean of the ``width`` points before each column (NaNs ignored); NaN without any."""
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    n, t = x.shape
    csum = np.zeros((n, t + 1))
    ccount = np.zeros((n, t + 1))
    np.cumsum(filled, axis=1, out=csum[:, 1:])
    np.cumsum(valid, axis=1, out=ccount[:, 1:])
    hi = np.arange(t)
    lo = np.maximum(hi - width, 0)
    sums = csum[:, hi] - csum[:, lo]
    counts = ccount[:, hi] - ccount[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _rolling_median_prev(x: FloatArray, width: int) -> FloatArray:
    """Median of the ``width`` points before each column; NaN until there are that many.

    A median, not a mean: the level must not be dragged up by the anomaly it is judging.
    """
    n, t = x.shape
    out = np.full((n, t), np.nan)
    if t > width:
        windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=1)[:, : t - width]
        out[:, width:] = np.median(windows, axis=2)
    return out


def _rolling_nanmedian_prev(x: FloatArray, width: int) -> FloatArray:
    """Median of the non-NaN values among the ``width`` points before each column.

    NaNs here only lead a row (warm-up, the same columns in every row), so only the first
    ``width`` columns after them need the slow NaN-aware median.
    """
    n, t = x.shape
    out = np.full((n, t), np.nan)
    valid_cols = np.flatnonzero(~np.all(np.isnan(x), axis=0))
    if t < 2 or valid_cols.size == 0:
        return out
    first = int(valid_cols[0])
    padded = np.concatenate([np.full((n, width), np.nan), x], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)[:, :t]
    slow_end = min(first + width, t)
    if slow_end > first + 1:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[:, first + 1 : slow_end] = np.nanmedian(windows[:, first + 1 : slow_end], axis=2)
    if slow_end < t:
        out[:, slow_end:] = np.median(windows[:, slow_end:], axis=2)
    return out


def _mute(score: FloatArray, fired: BoolArray, cooldown: int) -> None:
    """In place: drop every alert that follows a kept alert by ``cooldown`` points or less."""
    for row in range(fired.shape[0]):
        quiet_until = -1
        for j in np.flatnonzero(fired[row]).tolist():
            if j <= quiet_until:
                fired[row, j] = False
                score[row, j] = 0.0
            else:
                quiet_until = j + cooldown
                score[row, j + 1 : j + cooldown + 1] = 0.0


def seasonal_trace(values: Any, settings: SeasonalSettings | None = None) -> DetectorTrace:
    """The seasonal detector at every point of every row (see the module docstring)."""
    cfg = settings or SeasonalSettings()
    x = _matrix(values)
    n, t = x.shape
    period = cfg.season or 7
    level = _rolling_median_prev(x, period)
    candidates = np.full((cfg.seasons, n, t), np.nan)
    for k in range(1, cfg.seasons + 1):
        lag = k * period
        if lag >= t:
            break
        candidates[k - 1, :, lag:] = x[:, :-lag] + level[:, lag:] - level[:, :-lag]
    any_candidate = ~np.all(np.isnan(candidates), axis=0)
    with np.errstate(all="ignore"):
        seasonal = np.nanmedian(np.where(any_candidate, candidates, 0.0), axis=0)
    # no guess before one season of history behind a season-long level: the season's shape
    # is unknown until then, and a level alone would alarm on every weekend
    expected = np.where(any_candidate, seasonal, np.nan)
    residual = np.abs(x - expected)
    width = max(period * cfg.seasons, 8)
    scale = _MAD_TO_SIGMA_MEDIAN * _rolling_nanmedian_prev(residual, width)
    known = ~np.isnan(expected) & ~np.isnan(scale)
    scale = np.where(known, scale, 0.0)
    scale = _floor_scale(scale, np.where(known, expected, 0.0), cfg)
    score = np.where(known, _z(x, np.where(known, expected, 0.0), scale, cfg), 0.0)
    fired = score >= cfg.z_threshold
    if cfg.cooldown:
        _mute(score, fired, cfg.cooldown)
    return DetectorTrace(
        expected=np.where(known, expected, np.nan),
        scale=scale,
        score=score,
        fired=fired,
    )


def streaming_trace(values: Any, settings: StreamingSettings | None = None) -> DetectorTrace:
    """The streaming detector at every point of every row: one pass, O(N) state per step."""
    cfg = settings or StreamingSettings()
    x = _matrix(values)
    n, t = x.shape
    period = cfg.season or 1
    warmup = cfg.warmup if cfg.warmup is not None else max(2 * period, 8)
    expected = np.full((n, t), np.nan)
    scale_out = np.zeros((n, t))
    score = np.zeros((n, t))
    fired = np.zeros((n, t), dtype=bool)
    if t == 0:
        return DetectorTrace(expected, scale_out, score, fired)
    init = min(period, t)
    if n == 1:
        return _streaming_one(x, cfg, period, warmup, init)
    level = x[:, :init].mean(axis=1)
    season = np.zeros((n, period))
    season[:, :init] = x[:, :init] - level[:, None]
    dev = np.abs(x[:, :init] - level[:, None] - season[:, :init]).mean(axis=1)
    muted = np.zeros(n, dtype=np.int64)
    up = cfg.direction == "up"
    for j in range(init, t):
        slot = j % period
        pred = level + season[:, slot]
        floor = np.maximum(cfg.min_relative_scale * np.abs(pred), cfg.min_scale)
        sc = np.maximum(_MAD_TO_SIGMA * dev, floor)
        sc = np.where(sc > 0, sc, 1e-9)
        obs = x[:, j]
        err = obs - pred
        relearn = muted > 0
        if j >= warmup:
            z = err / sc if up else np.abs(err) / sc
            z = np.where((pred >= cfg.min_baseline) & (muted == 0), z, 0.0)
            hit = z >= cfg.z_threshold
            expected[:, j] = pred
            scale_out[:, j] = sc
            score[:, j] = z
            fired[:, j] = hit
            muted = np.where(hit, cfg.cooldown, np.maximum(muted - 1, 0))
        # winsorised update: an outlier moves the state by at most ``clip`` scales; during a
        # cooldown the state follows the data, so a lasting shift becomes the new normal
        bound = np.where(relearn, np.inf, cfg.clip * sc)
        clipped = pred + np.clip(err, -bound, bound)
        new_level = level + cfg.alpha * (clipped - season[:, slot] - level)
        if period > 1:
            season[:, slot] += cfg.gamma * (clipped - new_level - season[:, slot])
        dev += cfg.beta * (np.abs(clipped - pred) - dev)
        level = new_level
    return DetectorTrace(expected, scale_out, score, fired)


def _streaming_one(
    x: FloatArray, cfg: StreamingSettings, period: int, warmup: int, init: int
) -> DetectorTrace:
    """:func:`streaming_trace` for one series in plain floats: the same operations in the same
    order (so the same bits, property-tested), without numpy's per-call cost on every step."""
    t = x.shape[1]
    values = x[0].tolist()
    level = float(x[0, :init].mean())
    season = [0.0] * period
    for k in range(init):
        season[k] = values[k] - level
    dev = float(np.abs(x[0, :init] - level - np.asarray(season[:init])).mean())
    expected = [math.nan] * t
    scale_out = [0.0] * t
    score = [0.0] * t
    fired = [False] * t
    muted = 0
    up = cfg.direction == "up"
    rel, abs_floor, thr = cfg.min_relative_scale, cfg.min_scale, cfg.z_threshold
    alpha, gamma, beta, clip = cfg.alpha, cfg.gamma, cfg.beta, cfg.clip
    for j in range(init, t):
        slot = j % period
        pred = level + season[slot]
        sc = max(_MAD_TO_SIGMA * dev, max(rel * abs(pred), abs_floor))
        if not sc > 0:
            sc = 1e-9
        err = values[j] - pred
        relearn = muted > 0
        if j >= warmup:
            z = err / sc if up else abs(err) / sc
            if not (pred >= cfg.min_baseline and muted == 0):
                z = 0.0
            hit = z >= thr
            expected[j] = pred
            scale_out[j] = sc
            score[j] = z
            fired[j] = hit
            muted = cfg.cooldown if hit else max(muted - 1, 0)
        bound = math.inf if relearn else clip * sc
        clipped = pred + min(max(err, -bound), bound)
        new_level = level + alpha * (clipped - season[slot] - level)
        if period > 1:
            season[slot] += gamma * (clipped - new_level - season[slot])
        dev += beta * (abs(clipped - pred) - dev)
        level = new_level
    return DetectorTrace(
        np.array([expected]), np.array([scale_out]), np.array([score]), np.array([fired])
    )


def detect_all(
    name: str, values: Any, params: Any = None, *, granularity: Granularity | str | None = None
) -> DetectorTrace:
    """Run detector ``name`` over every point of a ``(N, T)`` matrix."""
    cfg = _settings(name, params)
    if cfg.season is None:
        cfg = cfg.model_copy(update={"season": default_season(granularity)})
    if isinstance(cfg, SeasonalSettings):
        return seasonal_trace(values, cfg)
    assert isinstance(cfg, StreamingSettings)
    return streaming_trace(values, cfg)


def detect(
    name: str,
    values: Any,
    lengths: Any = None,
    params: Any = None,
    *,
    granularity: Granularity | str | None = None,
) -> DetectorArrays:
    """Judge the latest point of each row of ``values`` (N, T); row i uses ``lengths[i]`` points.

    This is the batch engine's entry point. Every computation looks backwards only, so the
    padding after a short row's ``lengths[i]`` points never influences its verdict.
    """
    x = _matrix(values)
    n, t = x.shape
    if t == 0:
        raise InputError("values has no points: a detector needs at least one per series")
    if lengths is None:
        last = np.full(n, t - 1, dtype=np.int64)
    else:
        lens = np.asarray(lengths, dtype=np.int64)
        if lens.shape != (n,) or np.any(lens < 1) or np.any(lens > t):
            raise InputError(f"lengths must be (N,) = ({n},) integers in [1, {t}]")
        last = lens - 1
    trace = detect_all(name, x, params, granularity=granularity)
    rows = np.arange(n)
    cfg = _settings(name, params)
    expected = trace.expected[rows, last]
    scale = trace.scale[rows, last]
    return DetectorArrays(
        expected=expected,
        observed=x[rows, last],
        score=trace.score[rows, last],
        threshold=expected + cfg.z_threshold * scale,
        fired=trace.fired[rows, last],
    )


def evidence_for(name: str, series: SpendSeries, params: Any = None) -> Evidence:
    """Judge the latest complete bucket of ``series`` with detector ``name``.

    ``params`` is the detector's settings model, a mapping of its fields, or None (defaults).
    """
    cfg = _settings(name, params)
    done = series.completed()
    if len(done) < 2:
        return Evidence(
            rule=name,
            fired=False,
            observed=float(done.amounts[-1]) if len(done) else 0.0,
            threshold=math.nan,
            action=cfg.action,
            detail=f"{name}: not enough complete data ({len(done)} buckets)",
        )
    result = detect(name, done.amounts, params=cfg, granularity=series.granularity)
    expected = float(result.expected[0])
    observed = float(result.observed[0])
    score = float(result.score[0])
    season = cfg.season or default_season(series.granularity)
    if math.isnan(expected):
        return Evidence(
            rule=name,
            fired=False,
            observed=observed,
            threshold=math.nan,
            action=cfg.action,
            detail=f"{name}: warming up ({len(done)} complete buckets, season {season})",
            data={"season": season, "last_complete": done.starts[-1].isoformat()},
        )
    threshold = float(result.threshold[0])
    fired = bool(result.fired[0])
    return Evidence(
        rule=name,
        fired=fired,
        observed=observed,
        threshold=threshold,
        action=cfg.action,
        expected=expected,
        score=score,
        detail=(
            f"latest {observed:,.2f} vs expected {expected:,.2f} "
            f"(score {score:.1f}, fires at {cfg.z_threshold:g}; season {season} buckets)"
        ),
        data={
            "season": season,
            "z_threshold": cfg.z_threshold,
            "last_complete": done.starts[-1].isoformat(),
        },
    )
