"""Multi-window, multi-burn-rate alerting on spend budgets (after the Google SRE workbook).

The burn rate of a window is how fast it spends the budget relative to the pace that spends
exactly the budget over its period::

    burn = (spend in window / window length) / (budget / period length)

so 1.0 is on pace, 14.4 spends a 30-day budget in about two days. An alert is a pair of windows
(long, short) with a factor: it fires only when BOTH windows burn at >= factor. The long window
makes it significant (a brief spike is absorbed), the short one makes it current (an alert
stops as soon as the burn stops).

Windows are measured in whole buckets of the data, so the defaults (:func:`default_windows`)
depend on the granularity: hourly data cannot have the workbook's 5-minute window, daily data
uses day-scale windows. Only *complete* buckets are judged (the series is cut after its last
complete bucket), so a half-filled latest bucket can neither fire an alert nor hide one.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloudcircuit.decision import Evidence
from cloudcircuit.errors import InputError
from cloudcircuit.spend import Granularity, SpendSeries

__all__ = [
    "BurnWindow",
    "BurnWindowSpec",
    "BurnWindowsSettings",
    "default_windows",
    "evaluate_burn",
    "format_duration",
    "parse_duration",
    "period_seconds",
]

Action = Literal["throttle", "block"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

HOUR = 3600.0
DAY = 86400.0


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"3d"``, ``"1w"`` or a number of seconds -> seconds (> 0)."""
    if isinstance(text, bool):
        raise InputError(f"{what} must be a duration like '1h', got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            raise InputError(
                f"{what} {text!r} is not a duration: use a number and a unit s, m, h, d or w "
                "(e.g. '30s', '5m', '1h', '3d')"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{what} must be > 0, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 3600 -> ``"1h"``, 5400 -> ``"90m"``."""
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One alert: fires when both the long and the short window (seconds) burn >= ``factor``."""

    long: float
    short: float
    factor: float
    action: Action = "throttle"

    def __post_init__(self) -> None:
        if not (self.long > 0 and self.short > 0):
            raise InputError(
                f"burn window lengths must be > 0 (long={self.long}, short={self.short})"
            )
        if self.short > self.long:
            raise InputError(
                f"burn window: short ({format_duration(self.short)}) must not exceed long "
                f"({format_duration(self.long)})"
            )
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise InputError(f"burn window factor must be > 0, got {self.factor}")

    @property
    def label(self) -> str:
        """``"6h/1h"``: the pair's name in evidence and metrics."""
        return f"{format_duration(self.long)}/{format_duration(self.short)}"


#: the SRE workbook's pages and ticket for a 30-day budget: (long, short, factor, action)
_WORKBOOK: tuple[tuple[float, float, float, Action], ...] = (
    (1 * HOUR, 5 * 60.0, 14.4, "block"),
    (6 * HOUR, 30 * 60.0, 6.0, "block"),
    (1 * DAY, 2 * HOUR, 3.0, "throttle"),
)


def default_windows(
    granularity: Granularity | str, period: str = "month"
) -> tuple[BurnWindow, ...]:
    """Workbook alert pairs, with windows no shorter than the data allows.

    - hourly data: the workbook's fast page (14.4x over 1 h), its slow page (6x over 6 h / 1 h)
      and its ticket (3x over 1 d / 2 h); the 5- and 30-minute short windows become one hour;
    - daily data: day-scale pairs, 6x over 2 d / 1 d (block) and 3x over 3 d / 1 d (throttle);
    - monthly data: one pair, the last complete month at >= 1x (it spent the whole budget).

    The workbook's slowest tier (1x over 3 days) is left out: a budget spent exactly on pace is
    the forecast rule's business, not an alert. ``period`` is accepted for symmetry (burn rates
    are already normalised by it).
    """
    gran = Granularity(granularity)
    if period not in ("day", "month"):
        raise InputError(f"period must be 'day' or 'month', got {period!r}")
    if gran is Granularity.HOUR:
        return tuple(
            BurnWindow(max(long, HOUR), max(short, HOUR), factor, action)
            for long, short, factor, action in _WORKBOOK
        )
    if gran is Granularity.DAY:
        return (
            BurnWindow(2 * DAY, DAY, 6.0, "block"),
            BurnWindow(3 * DAY, DAY, 3.0, "throttle"),
        )
    month = Granularity.MONTH.seconds
    return (BurnWindow(month, month, 1.0, "throttle"),)


def period_seconds(period: str, at: datetime | None = None) -> float:
    """Length of a budget period: a day, or the calendar month holding ``at`` (30 days if None)."""
    if period == "day":
        return DAY
    if period == "month":
        if at is None:
            return 30 * DAY
        return calendar.monthrange(at.year, at.month)[1] * DAY
    raise InputError(f"period must be 'day' or 'month', got {period!r}")


def _buckets(seconds: float, bucket: float, window: BurnWindow) -> int:
    n = seconds / bucket
    whole = round(n)
    if whole < 1 or abs(n - whole) > 1e-9 * max(1.0, n):
        raise InputError(
            f"burn window {window.label}: {format_duration(seconds)} is not a whole number of "
            f"{format_duration(bucket)} buckets"
        )
    return int(whole)


def evaluate_burn(
    series: SpendSeries,
    budget_amount: float,
    period: str,
    windows: Sequence[BurnWindow] | None = None,
) -> list[Evidence]:
    """One :class:`Evidence` per window pair for ``series`` against a budget of ``period``.

    Judged up to the last complete bucket. ``observed`` is the lower of the two burn rates (the
    pair fires when it reaches ``threshold`` = factor), ``expected`` the on-pace spend of the
    short window, ``score`` observed / factor; ``data`` carries both burn rates and spends.
    A pair whose long window has more buckets than the complete data does not fire and says so.
    """
    if not (math.isfinite(budget_amount) and budget_amount > 0):
        raise InputError(f"budget amount must be > 0, got {budget_amount}")
    pairs = default_windows(series.granularity, period) if windows is None else tuple(windows)
    done = series.completed()
    bucket = series.granularity.seconds
    last = done.starts[-1] if len(done) else None
    per_second = budget_amount / period_seconds(period, last)
    amounts = done.amounts
    out: list[Evidence] = []
    for window in pairs:
        n_long = _buckets(window.long, bucket, window)
        n_short = _buckets(window.short, bucket, window)
        base = {
            "pair": window.label,
            "long_seconds": window.long,
            "short_seconds": window.short,
            "factor": window.factor,
            "complete_buckets": len(done),
            "last_complete": last.isoformat() if last else None,
        }
        if len(done) < n_long:
            out.append(
                Evidence(
                    rule="burn_windows",
                    fired=False,
                    observed=0.0,
                    threshold=window.factor,
                    action=window.action,
                    detail=(f"{window.label}: needs {n_long} complete buckets, has {len(done)}"),
                    data={**base, "insufficient": True},
                )
            )
            continue
        spend_long = float(math.fsum(amounts[-n_long:].tolist()))
        spend_short = float(math.fsum(amounts[-n_short:].tolist()))
        burn_long = spend_long / (n_long * bucket) / per_second
        burn_short = spend_short / (n_short * bucket) / per_second
        observed = min(burn_long, burn_short)
        fired = burn_long >= window.factor and burn_short >= window.factor
        out.append(
            Evidence(
                rule="burn_windows",
                fired=fired,
                observed=observed,
                threshold=window.factor,
                action=window.action,
                expected=per_second * n_short * bucket,
                score=observed / window.factor,
                detail=(
                    f"{window.label} burn {burn_long:.2f}x / {burn_short:.2f}x of the "
                    f"{period} budget pace (fires at {window.factor:g}x)"
                ),
                data={
                    **base,
                    "burn_long": burn_long,
                    "burn_short": burn_short,
                    "spend_long": spend_long,
                    "spend_short": spend_short,
                },
            )
        )
    return out


# -- policy settings ----------------------------------------------------------------------


class BurnWindowSpec(BaseModel):
    """One window pair in a policy file: ``{long: 6h, short: 1h, factor: 6, action: block}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    long: str | float = Field(description="Long window: a duration like '6h' or seconds.")
    short: str | float = Field(description="Short window: a duration like '1h' or seconds.")
    factor: float = Field(gt=0, description="Burn rate both windows must reach.")
    action: Action = Field(default="throttle", description="What the pair asks for when it fires.")

    @field_validator("long", "short")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        try:
            parse_duration(value, what="window")
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _pair(self) -> BurnWindowSpec:
        long, short = parse_duration(self.long), parse_duration(self.short)
        if short > long:
            raise ValueError(
                f"short window {format_duration(short)} must not exceed long window "
                f"{format_duration(long)}"
            )
        return self

    def to_window(self) -> BurnWindow:
        try:
            return BurnWindow(
                parse_duration(self.long), parse_duration(self.short), self.factor, self.action
            )
        except InputError as exc:
            raise InputError(f"detectors.burn_windows.windows: {exc}") from None


class BurnWindowsSettings(BaseModel):
    """The multi-window burn-rate detector in a policy (``detectors.burn_windows``).

    ``windows`` empty = :func:`default_windows` for the data's granularity and the budget's
    period; each pair carries its own action.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Run the multi-window burn-rate detector.")
    windows: list[BurnWindowSpec] = Field(
        default_factory=list, description="Window pairs; empty = defaults for the granularity."
    )

    def resolve(self, granularity: Granularity | str, period: str) -> list[BurnWindow]:
        """The pairs to evaluate for data of ``granularity`` and a budget of ``period``."""
        if self.windows:
            return [w.to_window() for w in self.windows]
        return list(default_windows(granularity, period))
