"""SLOTracker and SLORegistry: record events, read snapshots and burn-rate alerts.

The math is the SRE workbook's (and slo-budget-tracker 0.1's):

- success ratio = successes / total (1.0 with no events);
- remaining budget = (allowed - failures) / allowed, allowed = (1 - target) * total;
- burn rate = (1 - success ratio) / (1 - target): 1.0 spends the budget exactly over the window.

A tracker works with any store; with a :class:`~cloudcircuit.slo.store.CountingStore` (the
bucketed and Redis stores) it never materialises observations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from cloudcircuit.slo.model import (
    BurnRateAlert,
    BurnRateSample,
    Observation,
    SLODefinition,
    SLOSnapshot,
)
from cloudcircuit.slo.store import CountingStore, InMemoryStore, ObservationStore

__all__ = ["SLORegistry", "SLOTracker"]


class SLOTracker:
    """One SLO and its event history."""

    __slots__ = ("_add", "_clock", "_counting", "_definition", "_store")

    def __init__(
        self,
        definition: SLODefinition,
        *,
        store: ObservationStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._definition = definition
        self._store: ObservationStore = (
            store if store is not None else InMemoryStore(definition.window_seconds)
        )
        self._clock = clock
        self._counting: CountingStore | None = (
            self._store if isinstance(self._store, CountingStore) else None
        )
        self._add: Callable[[float, bool], None] | None = (
            self._counting.add if self._counting is not None else None
        )

    @property
    def definition(self) -> SLODefinition:
        return self._definition

    @property
    def name(self) -> str:
        return self._definition.name

    @property
    def store(self) -> ObservationStore:
        return self._store

    # -- recording -----------------------------------------------------------------------

    def record(self, success: bool, *, at: float | None = None) -> None:
        ts = self._clock() if at is None else at
        if self._add is not None:
            self._add(ts, success)
        else:
            self._store.record(Observation(ts, success))

    def record_success(self, *, at: float | None = None) -> None:
        self.record(True, at=at)

    def record_failure(self, *, at: float | None = None) -> None:
        self.record(False, at=at)

    # -- reading -------------------------------------------------------------------------

    def _counts(self, now: float, seconds: int) -> tuple[int, int]:
        if self._counting is not None:
            return self._counting.counts(now, seconds)
        window = self._store.window(now, seconds)
        return len(window), sum(1 for o in window if not o.success)

    def _burn(self, success_ratio: float) -> float:
        return (1.0 - success_ratio) / self._definition.error_budget_ratio

    def _sample(self, now: float, seconds: int) -> BurnRateSample:
        total, failures = self._counts(now, seconds)
        if total == 0:
            return BurnRateSample(seconds, 0.0, 1.0, 0)
        ratio = (total - failures) / total
        return BurnRateSample(seconds, self._burn(ratio), ratio, total)

    def snapshot(self, *, at: float | None = None) -> SLOSnapshot:
        now = self._clock() if at is None else at
        d = self._definition
        total, failures = self._counts(now, d.window_seconds)
        ratio = (total - failures) / total if total else 1.0
        if total:
            allowed = d.error_budget_ratio * total
            remaining = (allowed - failures) / allowed
        else:
            remaining = 1.0
        return SLOSnapshot(
            name=d.name,
            target=d.target,
            window_seconds=d.window_seconds,
            total=total,
            failures=failures,
            success_ratio=ratio,
            error_budget_remaining=remaining,
            burn_rate=self._burn(ratio),
            burn_rate_samples=tuple(self._sample(now, w) for w in d.burn_rate_windows),
        )

    def check_burn_rate(self, *, at: float | None = None) -> list[BurnRateAlert]:
        """One alert per short window whose burn rate is >= the threshold (empty windows skip)."""
        now = self._clock() if at is None else at
        d = self._definition
        alerts: list[BurnRateAlert] = []
        for window in d.burn_rate_windows:
            sample = self._sample(now, window)
            if sample.sample_count and sample.burn_rate >= d.burn_rate_threshold:
                alerts.append(
                    BurnRateAlert(
                        slo_name=d.name,
                        window_seconds=window,
                        burn_rate=sample.burn_rate,
                        threshold=d.burn_rate_threshold,
                        success_ratio=sample.success_ratio,
                        sample_count=sample.sample_count,
                    )
                )
        return alerts


class SLORegistry:
    """Named trackers, so one exporter or middleware can serve many SLOs. Thread-safe."""

    __slots__ = ("_lock", "_trackers")

    def __init__(self) -> None:
        self._trackers: dict[str, SLOTracker] = {}
        self._lock = threading.Lock()

    def define(
        self,
        definition: SLODefinition,
        *,
        store: ObservationStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SLOTracker:
        """Create and register a tracker for ``definition`` (a duplicate name is a ValueError)."""
        tracker = SLOTracker(definition, store=store, clock=clock)
        self.add(tracker)
        return tracker

    def add(self, tracker: SLOTracker) -> None:
        """Register an existing tracker (e.g. one built on a bucketed or Redis store)."""
        with self._lock:
            if tracker.name in self._trackers:
                raise ValueError(f"SLO {tracker.name!r} is already registered")
            self._trackers[tracker.name] = tracker

    def get(self, name: str) -> SLOTracker:
        try:
            return self._trackers[name]
        except KeyError:
            known = ", ".join(sorted(self._trackers)) or "none"
            raise KeyError(f"no SLO named {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        return list(self._trackers)

    def __contains__(self, name: object) -> bool:
        return name in self._trackers

    def __len__(self) -> int:
        return len(self._trackers)

    def __iter__(self) -> Iterator[SLOTracker]:
        with self._lock:
            return iter(list(self._trackers.values()))

    def snapshot_all(self, *, at: float | None = None) -> list[SLOSnapshot]:
        return [t.snapshot(at=at) for t in self]

    def check_burn_rates(self, *, at: float | None = None) -> list[BurnRateAlert]:
        return [a for t in self for a in t.check_burn_rate(at=at)]
