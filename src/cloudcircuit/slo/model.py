"""The value objects of the SLO tracker (slo-budget-tracker 0.1 names and semantics).

Plain frozen dataclasses, no pydantic: these sit on a request's hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BurnRateAlert",
    "BurnRateSample",
    "Observation",
    "SLODefinition",
    "SLOSnapshot",
]

#: float dust below which a budget counts as spent
_EXHAUSTED_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class SLODefinition:
    """One SLO: a success-ratio target over a rolling window, plus burn-rate alert windows.

    ``burn_rate_windows`` are the short windows (seconds) whose burn rate is sampled and alerted
    on at ``burn_rate_threshold`` (14.4 = the SRE workbook's fast-burn page: 2 % of a 30-day
    budget in one hour).
    """

    name: str
    target: float
    window_seconds: int = 30 * 24 * 3600
    burn_rate_windows: tuple[int, ...] = (3600, 21600)
    burn_rate_threshold: float = 14.4
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("SLODefinition.name must be non-empty")
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"SLODefinition.target must be in (0, 1), got {self.target}")
        if self.window_seconds <= 0:
            raise ValueError(f"SLODefinition.window_seconds must be > 0, got {self.window_seconds}")
        for window in self.burn_rate_windows:
            if window <= 0 or window > self.window_seconds:
                raise ValueError(
                    f"SLODefinition.burn_rate_windows: {window}s must be > 0 and <= "
                    f"window_seconds ({self.window_seconds}s)"
                )
        if self.burn_rate_threshold <= 1:
            raise ValueError(
                f"SLODefinition.burn_rate_threshold must be > 1, got {self.burn_rate_threshold}"
            )

    @property
    def error_budget_ratio(self) -> float:
        """The fraction of events allowed to fail: ``1 - target``."""
        return 1.0 - self.target


@dataclass(frozen=True, slots=True)
class Observation:
    """One event: when it happened (epoch seconds) and whether it succeeded."""

    timestamp: float
    success: bool


@dataclass(frozen=True, slots=True)
class BurnRateSample:
    """The burn rate measured over one short window."""

    window_seconds: int
    burn_rate: float
    success_ratio: float
    sample_count: int


@dataclass(frozen=True, slots=True)
class BurnRateAlert:
    """A short window whose burn rate reached the definition's threshold."""

    slo_name: str
    window_seconds: int
    burn_rate: float
    threshold: float
    success_ratio: float
    sample_count: int


@dataclass(frozen=True, slots=True)
class SLOSnapshot:
    """An SLO's health at one instant.

    ``error_budget_remaining`` is a fraction of the *budget*: 1.0 untouched, 0.0 spent,
    negative when the SLO is in breach.
    """

    name: str
    target: float
    window_seconds: int
    total: int
    failures: int
    success_ratio: float
    error_budget_remaining: float
    burn_rate: float
    burn_rate_samples: tuple[BurnRateSample, ...] = ()

    @property
    def is_breached(self) -> bool:
        """True when the success ratio is below the target."""
        return self.success_ratio < self.target

    @property
    def is_budget_exhausted(self) -> bool:
        """True when the budget is spent (float dust such as 8.9e-16 counts as spent)."""
        return self.error_budget_remaining <= _EXHAUSTED_EPSILON
