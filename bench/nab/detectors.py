"""Every detector the NAB benchmark compares, as ``fn(file) -> scores in [0, 1] per row``.

- ``seasonal`` and ``streaming``: cloudcircuit.detectors, season = one day of rows, both
  directions (NAB labels drops as well as rises);
- ``rule_spike``, ``rule_burn_rate``, ``rule_mad``, ``rule_percentile``: the cloudcircuit 0.3
  guardrails applied as rolling detectors (each point judged against the ``history`` points
  before it, exactly the 0.3 formulas, vectorised); their natural score is observed / threshold
  (for MAD the robust z), so sweeping NAB's threshold tunes their multiplier;
- ``windowed_gaussian``: NAB's baseline (mean and standard deviation of up to 6400 previous
  points, refreshed every 100; score = two-sided normal probability of the deviation).

The 0.3 rules are for non-negative spend; NAB series that dip below zero are shifted up by
their minimum before the rules see them (the other detectors see the raw values).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.nab.data import NabFile, rows_per_day
from cloudcircuit.detectors import detect_all
from cloudcircuit.guardrails import MAD_TO_SIGMA

__all__ = ["DETECTORS", "Detector", "z_to_unit"]

FloatArray = npt.NDArray[np.float64]
Detector = Callable[[NabFile], FloatArray]


def z_to_unit(z: FloatArray, half: float = 4.0) -> FloatArray:
    """Monotone map of a non-negative score to [0, 1): ``half`` -> 0.5."""
    z = np.maximum(np.nan_to_num(z, nan=0.0, posinf=1e12), 0.0)
    return z / (z + half)


def _windows(x: FloatArray, width: int) -> FloatArray:
    """(T - width, width) matrix of the ``width`` points before each row from row ``width`` on."""
    return np.lib.stride_tricks.sliding_window_view(x, width)[: x.size - width]


def _from(x: FloatArray, width: int, tail: FloatArray) -> FloatArray:
    """``tail`` placed at rows ``width..``; rows before it (no full history) score 0."""
    out = np.zeros(x.size)
    out[width:] = np.where(np.isfinite(tail), tail, 0.0)
    return out


def _nonneg(f: NabFile) -> FloatArray:
    lo = float(f.values.min())
    return f.values - lo if lo < 0 else f.values


def rule_spike(f: NabFile, history: int, multiplier: float = 1.5) -> FloatArray:
    """0.3 check_anomaly_spike: latest > mean(history) * multiplier; score latest / threshold."""
    x = _nonneg(f)
    with np.errstate(all="ignore"):
        ratio = x[history:] / (_windows(x, history).mean(axis=1) * multiplier)
    return z_to_unit(_from(x, history, ratio), half=1.0)


def rule_burn_rate(f: NabFile, history: int, hot: float = 1.4) -> FloatArray:
    """0.3 check_burn_rate: latest / mean(others) >= hot_multiplier."""
    return rule_spike(f, history, hot)


def rule_mad(f: NabFile, history: int) -> FloatArray:
    """0.3 check_anomaly_robust (mad): (latest - median) / (MAD / 0.6745)."""
    x = _nonneg(f)
    win = _windows(x, history)
    med = np.median(win, axis=1)
    mad = np.median(np.abs(win - med[:, None]), axis=1)
    with np.errstate(all="ignore"):
        z = (x[history:] - med) / (mad / MAD_TO_SIGMA)
    return z_to_unit(_from(x, history, z), half=3.5)


def rule_percentile(f: NabFile, history: int, p: float = 0.95) -> FloatArray:
    """0.3 check_anomaly_robust (percentile): latest / quantile_p(history)."""
    x = _nonneg(f)
    with np.errstate(all="ignore"):
        ratio = x[history:] / np.quantile(_windows(x, history), p, axis=1)
    return z_to_unit(_from(x, history, ratio), half=1.0)


def windowed_gaussian(f: NabFile, window: int = 6400, step: int = 100) -> FloatArray:
    """NAB's windowedGaussian baseline (see the module docstring)."""
    x = f.values
    out = np.zeros(x.size)
    mean = std = 0.0
    filled = 0
    for i in range(x.size):
        if filled > 0:
            if std > 0:
                z = abs(x[i] - mean) / std
                out[i] = math.erf(z / math.sqrt(2.0))
            else:
                out[i] = 0.0 if x[i] == mean else 1.0
        # refresh the window statistics on NAB's schedule
        if i < window or (i - window) % step == step - 1:
            lo = max(0, i + 1 - window)
            seg = x[lo : i + 1]
            mean, std = float(seg.mean()), float(seg.std())
            filled = seg.size
    return out


def _ours(name: str, **params: Any) -> Detector:
    """Our detector as an alerting detector: the score of each alert, 0 between alerts."""

    def run(f: NabFile) -> FloatArray:
        day = rows_per_day(f)
        settings = {"season": day, "direction": "both", "cooldown": day, **params}
        trace = detect_all(name, f.values[None, :], settings)
        return np.where(trace.fired[0], z_to_unit(trace.score[0]), 0.0)

    return run


def _rule(fn: Callable[..., FloatArray], history: int | None) -> Detector:
    def run(f: NabFile) -> FloatArray:
        return fn(f, history if history is not None else rows_per_day(f))

    return run


def with_cooldown(detector: Detector, fire_at: float) -> Detector:
    """The same scores as an alerting detector: alerts at ``score >= fire_at``, each followed
    by a day of silence, 0 between alerts (what our detectors do with ``cooldown``)."""

    def run(f: NabFile) -> FloatArray:
        s = detector(f)
        out = np.zeros_like(s)
        day = rows_per_day(f)
        quiet_until = -1
        for j in np.flatnonzero(s >= fire_at):
            if j > quiet_until:
                out[j] = s[j]
                quiet_until = j + day
        return out

    return run


#: name -> (detector, family); family groups the rows of the score table
DETECTORS: dict[str, tuple[Detector, str]] = {
    "seasonal": (_ours("seasonal"), "new"),
    "streaming": (_ours("streaming"), "new"),
    "rule_spike[h=28]": (_rule(rule_spike, 28), "0.3 rule"),
    "rule_spike[h=day]": (_rule(rule_spike, None), "0.3 rule"),
    "rule_burn_rate[h=28]": (_rule(rule_burn_rate, 28), "0.3 rule"),
    "rule_mad[h=28]": (_rule(rule_mad, 28), "0.3 rule"),
    "rule_mad[h=day]": (_rule(rule_mad, None), "0.3 rule"),
    "rule_percentile[h=28]": (_rule(rule_percentile, 28), "0.3 rule"),
    "rule_percentile[h=day]": (_rule(rule_percentile, None), "0.3 rule"),
    "windowed_gaussian": (windowed_gaussian, "baseline"),
    # the same rules given our detectors' one-alert-per-day cooldown, at their default triggers
    "rule_spike[h=day]+cooldown": (
        with_cooldown(_rule(rule_spike, None), 0.5),
        "0.3 rule + cooldown",
    ),
    "rule_mad[h=day]+cooldown": (
        with_cooldown(_rule(rule_mad, None), 0.5),
        "0.3 rule + cooldown",
    ),
    "rule_percentile[h=day]+cooldown": (
        with_cooldown(_rule(rule_percentile, None), 0.5),
        "0.3 rule + cooldown",
    ),
    "windowed_gaussian+cooldown": (
        with_cooldown(windowed_gaussian, math.erf(4.0 / math.sqrt(2.0))),
        "baseline + cooldown",
    ),
}
