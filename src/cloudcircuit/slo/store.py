"""Observation stores: the exact in-memory store (0.1) and a bucketed one for high volume.

:class:`InMemoryStore` keeps every observation, so memory and snapshot cost grow with the
request rate: right for a few requests a second. :class:`BucketedStore` keeps one
(total, failures) pair per time bucket in a fixed ring, so memory is fixed per window whatever the
rate, and a count over a window costs at most the number of buckets it spans (usually far less:
see :meth:`BucketedStore.counts`). Counts are exact at bucket resolution: a window whose start
falls on a bucket boundary gets exactly the exact store's answer; otherwise the bucket holding
the window's start is counted whole.

A store that also implements :class:`CountingStore` lets :class:`~cloudcircuit.slo.SLOTracker`
skip materialising observations.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Protocol, runtime_checkable

from cloudcircuit.slo.model import Observation

__all__ = [
    "BucketedStore",
    "CountingStore",
    "InMemoryStore",
    "ObservationStore",
    "default_resolution",
]


class ObservationStore(Protocol):
    """The 0.1 store protocol."""

    def record(self, observation: Observation) -> None: ...

    def window(self, now: float, seconds: int) -> list[Observation]: ...

    def trim(self, before: float) -> None: ...

    def __len__(self) -> int: ...


@runtime_checkable
class CountingStore(Protocol):
    """A store that counts without materialising observations (the fast path)."""

    def add(self, timestamp: float, success: bool) -> None:
        """Record one event (same as ``record(Observation(timestamp, success))``)."""
        ...

    def counts(self, now: float, seconds: int) -> tuple[int, int]:
        """``(total, failures)`` of the events with timestamp >= ``now - seconds``."""
        ...


class InMemoryStore:
    """Every observation in a deque, trimmed to ``max_age_seconds`` behind the newest one.

    O(1) record, O(n) window. Exact, thread-safe.
    """

    __slots__ = ("_data", "_lock", "_max_age")

    def __init__(self, max_age_seconds: float) -> None:
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        self._max_age = float(max_age_seconds)
        self._data: deque[Observation] = deque()
        self._lock = threading.Lock()

    @property
    def max_age_seconds(self) -> float:
        return self._max_age

    def record(self, observation: Observation) -> None:
        with self._lock:
            self._data.append(observation)
            cutoff = observation.timestamp - self._max_age
            data = self._data
            while data and data[0].timestamp < cutoff:
                data.popleft()

    def window(self, now: float, seconds: int) -> list[Observation]:
        """Observations with ``timestamp >= now - seconds``, in time order."""
        cutoff = now - seconds
        with self._lock:
            return [o for o in self._data if o.timestamp >= cutoff]

    def trim(self, before: float) -> None:
        """Drop observations older than ``before``."""
        with self._lock:
            while self._data and self._data[0].timestamp < before:
                self._data.popleft()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


def default_resolution(window_seconds: int, burn_rate_windows: tuple[int, ...] = ()) -> int:
    """Bucket width for a definition: 1/60 of its shortest window, at least one second.

    A 1 h burn window then spans 60 buckets (counts within ~1.7 % of its length), and a
    30-day window 43,200 buckets (about 1 MB).
    """
    shortest = min((window_seconds, *burn_rate_windows))
    return max(1, int(shortest // 60))


class BucketedStore:
    """A fixed ring of per-bucket (total, failures) counters covering ``max_age_seconds``.

    Bucket ``i`` holds the events with ``i * resolution <= timestamp < (i + 1) * resolution``.
    The ring holds the newest ``ceil(max_age / resolution) + 1`` buckets (bucket ``i`` lives in
    slot ``i % size``); recording into a newer bucket clears the buckets it skips, so an event
    older than the ring is dropped just as the exact store trims it. Running totals over the
    ring make a full-window count O(1); any other window is two C-level slice sums.
    """

    __slots__ = (
        "_acquire",
        "_all_failures",
        "_all_total",
        "_failures",
        "_lock",
        "_max_age",
        "_newest",
        "_release",
        "_res",
        "_size",
        "_totals",
    )

    def __init__(self, max_age_seconds: float, *, resolution_seconds: float = 60.0) -> None:
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        if not resolution_seconds > 0:
            raise ValueError(f"resolution_seconds must be > 0, got {resolution_seconds}")
        self._max_age = float(max_age_seconds)
        self._res = float(resolution_seconds)
        self._size = math.ceil(self._max_age / self._res) + 1
        self._totals = [0] * self._size
        self._failures = [0] * self._size
        self._newest = -(2**62)
        self._all_total = 0
        self._all_failures = 0
        self._lock = threading.Lock()
        # bound once: ``with self._lock`` costs about twice as much on the hot path
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    @classmethod
    def for_window(
        cls, window_seconds: int, burn_rate_windows: tuple[int, ...] = ()
    ) -> BucketedStore:
        """A store sized for an SLO window with :func:`default_resolution`."""
        return cls(
            window_seconds,
            resolution_seconds=default_resolution(window_seconds, burn_rate_windows),
        )

    @property
    def resolution_seconds(self) -> float:
        return self._res

    @property
    def bucket_count(self) -> int:
        return self._size

    # -- writing -------------------------------------------------------------------------

    def _advance(self, idx: int) -> None:
        """Make ``idx`` the newest bucket, clearing the slots of the buckets it skips."""
        size = self._size
        if idx - self._newest >= size:
            self._totals = [0] * size
            self._failures = [0] * size
            self._all_total = self._all_failures = 0
        else:
            totals, failures = self._totals, self._failures
            for j in range(self._newest + 1, idx + 1):
                slot = j % size
                self._all_total -= totals[slot]
                self._all_failures -= failures[slot]
                totals[slot] = failures[slot] = 0
        self._newest = idx

    def add(self, timestamp: float, success: bool) -> None:
        idx = int(timestamp // self._res)
        self._acquire()
        try:
            if idx > self._newest:
                self._advance(idx)
            elif idx <= self._newest - self._size:
                return  # older than the ring: the exact store would have trimmed it
            slot = idx % self._size
            self._totals[slot] += 1
            self._all_total += 1
            if not success:
                self._failures[slot] += 1
                self._all_failures += 1
        finally:
            self._release()

    def record(self, observation: Observation) -> None:
        self.add(observation.timestamp, observation.success)

    def trim(self, before: float) -> None:
        """Drop the buckets that end at or before ``before``."""
        limit = int(before // self._res)
        with self._lock:
            oldest = self._newest - self._size + 1
            for j in range(oldest, min(limit, self._newest + 1)):
                slot = j % self._size
                self._all_total -= self._totals[slot]
                self._all_failures -= self._failures[slot]
                self._totals[slot] = self._failures[slot] = 0

    # -- reading -------------------------------------------------------------------------

    def _sum(self, lo: int, hi: int) -> tuple[int, int]:
        """Totals of buckets ``lo..hi`` (inclusive, inside the ring): one or two slices."""
        size = self._size
        a, b = lo % size, hi % size
        totals, failures = self._totals, self._failures
        if a <= b:
            return sum(totals[a : b + 1]), sum(failures[a : b + 1])
        return (
            sum(totals[a:]) + sum(totals[: b + 1]),
            sum(failures[a:]) + sum(failures[: b + 1]),
        )

    def counts(self, now: float, seconds: int) -> tuple[int, int]:
        """``(total, failures)`` of the buckets at or after the one holding ``now - seconds``.

        A window covering the whole ring is the running total; otherwise the shorter of the
        window and its complement is summed.
        """
        cutoff = int((now - seconds) // self._res)
        with self._lock:
            newest = self._newest
            oldest = newest - self._size + 1
            if cutoff <= oldest:
                return self._all_total, self._all_failures
            if cutoff > newest:
                return 0, 0
            inside = newest - cutoff + 1
            if inside <= self._size - inside:
                return self._sum(cutoff, newest)
            before_total, before_fails = self._sum(oldest, cutoff - 1)
            return self._all_total - before_total, self._all_failures - before_fails

    def window(self, now: float, seconds: int) -> list[Observation]:
        """Observations rebuilt from the counters, stamped at their bucket's start.

        For the 0.1 protocol only: it materialises every event, so prefer :meth:`counts`.
        """
        cutoff = int((now - seconds) // self._res)
        with self._lock:
            lo = max(cutoff, self._newest - self._size + 1)
            buckets = [
                (j, self._totals[j % self._size], self._failures[j % self._size])
                for j in range(lo, self._newest + 1)
            ]
        out: list[Observation] = []
        for idx, total, fails in buckets:
            start = idx * self._res
            out.extend(Observation(start, False) for _ in range(fails))
            out.extend(Observation(start, True) for _ in range(total - fails))
        return out

    def __len__(self) -> int:
        with self._lock:
            return self._all_total
