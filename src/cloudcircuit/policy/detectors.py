"""Detector settings: which anomaly and forecast rules run for a budget, and how.

Set once at policy level; a budget's ``detectors`` overrides any part of it (a deep merge of the
keys the budget sets, see :meth:`DetectorSettings.merged`). A detector module adds its own
settings as one more sub-model field with a default on :class:`DetectorSettings`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from cloudcircuit.burn import BurnWindowsSettings
from cloudcircuit.detectors import SeasonalSettings, StreamingSettings
from cloudcircuit.policy._base import NonNegativeFloat, PolicyModel, PositiveFloat, RuleAction

__all__ = [
    "BurnRateSettings",
    "DetectorRule",
    "DetectorSettings",
    "ForecastSettings",
    "RobustSettings",
    "SpikeSettings",
]


class DetectorRule(PolicyModel):
    """What every detector has: whether it runs and what it asks for when it fires."""

    enabled: bool = Field(default=True, description="Run this detector.")
    action: RuleAction = Field(
        default="throttle", description="What the detector asks for when it fires."
    )


class SpikeSettings(DetectorRule):
    """Latest complete bucket against the mean of the history (0.3 check_anomaly_spike)."""

    multiplier: float = Field(
        default=1.5,
        gt=1,
        allow_inf_nan=False,
        description="Fires when latest > max(mean, min_baseline) * multiplier.",
    )
    min_baseline: NonNegativeFloat = Field(
        default=0.0, description="Floor of the baseline, so tiny scopes do not fire on cents."
    )


class RobustSettings(DetectorRule):
    """Median/MAD or percentile threshold (0.3 check_anomaly_robust): resists outliers."""

    enabled: bool = Field(default=False, description="Run this detector.")
    method: Literal["mad", "percentile"] = Field(
        default="mad", description="'mad' (median + z * MAD / 0.6745) or 'percentile'."
    )
    z_threshold: PositiveFloat = Field(default=3.5, description="MAD method: z multiplier.")
    min_mad: NonNegativeFloat = Field(
        default=0.0, description="MAD method: floor of the spread (avoids firing on flat series)."
    )
    percentile: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="Percentile method: quantile of the history used as threshold, in (0, 1).",
    )
    min_baseline: NonNegativeFloat = Field(default=0.0, description="Floor of the location.")


class BurnRateSettings(DetectorRule):
    """Latest bucket over the history mean (0.3 check_burn_rate)."""

    enabled: bool = Field(default=False, description="Run this detector.")
    hot_multiplier: float = Field(
        default=1.4,
        gt=1,
        allow_inf_nan=False,
        description="Fires when latest / mean >= hot_multiplier.",
    )


class ForecastSettings(DetectorRule):
    """Projects the period's total and fires when it reaches the budget amount."""

    method: Literal["linear", "run_rate"] = Field(
        default="run_rate",
        description="'linear': spend-to-date / elapsed * total (0.3); 'run_rate': spend-to-date "
        "+ mean of the last run_rate_buckets complete buckets * remaining buckets.",
    )
    breach_ratio: PositiveFloat = Field(
        default=1.0,
        description="Fires when the projected total reaches this share of the amount (0.9: "
        "warn when the month is on course to use 90% of the budget).",
    )
    run_rate_buckets: int = Field(
        default=7, ge=1, description="Complete buckets averaged by the run_rate method."
    )


class DetectorSettings(PolicyModel):
    """Which detectors run and how. Set at policy level; a budget may override any part.

    Detector modules add their own sub-model here as one more field with a default.
    """

    history: int = Field(
        default=28,
        ge=2,
        description="Points of history (complete buckets) the anomaly detectors look at.",
    )
    spike: SpikeSettings = Field(default_factory=SpikeSettings, description="Spike detector.")
    robust: RobustSettings = Field(
        default_factory=RobustSettings, description="Robust (MAD/percentile) anomaly detector."
    )
    burn_rate: BurnRateSettings = Field(
        default_factory=BurnRateSettings, description="Single-window burn-rate detector."
    )
    forecast: ForecastSettings = Field(
        default_factory=ForecastSettings, description="End-of-period forecast against budget."
    )
    # owned by cloudcircuit.burn / cloudcircuit.detectors (DETECT)
    burn_windows: BurnWindowsSettings = Field(
        default_factory=BurnWindowsSettings,
        description="Multi-window, multi-burn-rate alerts on the budget (SRE workbook).",
    )
    seasonal: SeasonalSettings = Field(
        default_factory=lambda: SeasonalSettings(enabled=False),
        description="Weekday-aware anomaly detector, expected value from past seasons "
        "(off by default: set enabled: true).",
    )
    streaming: StreamingSettings = Field(
        default_factory=lambda: StreamingSettings(enabled=False),
        description="Streaming robust Holt-Winters detector for hourly data "
        "(off by default: set enabled: true).",
    )

    def merged(self, override: DetectorSettings | None) -> DetectorSettings:
        """This object with every key ``override`` set explicitly taking precedence (deep)."""
        if override is None:
            return self
        merged: DetectorSettings = _merge(self, override)
        return merged


def _merge(base: BaseModel, override: BaseModel) -> Any:
    """``base`` with the keys set explicitly in ``override`` on top, sub-models merged too
    (any pydantic model, so detector settings defined in other modules merge the same way)."""
    update: dict[str, Any] = {}
    for name in override.model_fields_set:
        new = getattr(override, name)
        old = getattr(base, name)
        if isinstance(new, BaseModel) and isinstance(old, type(new)):
            update[name] = _merge(old, new)
        else:
            update[name] = new
    return base.model_copy(update=update)
