"""The scan circuit breaker, persisted in a state store between scans.

A scan that fails, or reads incomplete data, counts as a failure. After
``failure_threshold`` consecutive failures the breaker opens and a cooldown of
``cooldown_scans`` starts; every later healthy scan resets the failure count and burns one
cooldown step, and the breaker closes when the cooldown reaches zero. A failure while open
restarts the cooldown. Whether it is open is exactly the 0.3 rule
(:func:`~cloudcircuit.guardrails.evaluate_circuit_breaker`), so the scalar API, the batch
engine and the persisted state agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cloudcircuit.decision import Evidence
from cloudcircuit.errors import InputError, StateError
from cloudcircuit.guardrails import CircuitBreakerDecision, evaluate_circuit_breaker
from cloudcircuit.providers import StateStore
from cloudcircuit.state.base import transaction

__all__ = [
    "BreakerState",
    "breaker_evidence",
    "breaker_key",
    "load_breaker",
    "record_scan",
    "save_breaker",
]


def breaker_key(name: str) -> str:
    """The state key of breaker ``name`` (one per policy, or per budget if a caller wants)."""
    return f"breaker:{name}"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What persists between scans."""

    consecutive_failures: int = 0
    cooldown_remaining: int = 0
    opened_at: datetime | None = None
    last_failure: str | None = None
    last_scan_at: datetime | None = None

    def decision(self, failure_threshold: int) -> CircuitBreakerDecision:
        """The 0.3 breaker decision for this state."""
        return evaluate_circuit_breaker(
            self.consecutive_failures, failure_threshold, self.cooldown_remaining
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "consecutive_failures": self.consecutive_failures,
            "cooldown_remaining": self.cooldown_remaining,
            "opened_at": self.opened_at,
            "last_failure": self.last_failure,
            "last_scan_at": self.last_scan_at,
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "breaker") -> BreakerState:
        if not isinstance(data, dict):
            raise StateError(f"state {where} is not a breaker record: {data!r}")
        try:
            failures = data.get("consecutive_failures", 0)
            cooldown = data.get("cooldown_remaining", 0)
            if not isinstance(failures, int) or not isinstance(cooldown, int):
                raise TypeError("counts must be integers")
            if failures < 0 or cooldown < 0:
                raise ValueError("counts must be >= 0")
            return cls(
                consecutive_failures=failures,
                cooldown_remaining=cooldown,
                opened_at=data.get("opened_at"),
                last_failure=data.get("last_failure"),
                last_scan_at=data.get("last_scan_at"),
            )
        except (TypeError, ValueError) as exc:
            raise StateError(f"state {where} is an inconsistent breaker record: {exc}") from exc


def load_breaker(store: StateStore, name: str) -> BreakerState:
    """The persisted state of breaker ``name`` (closed, no failures, when never saved)."""
    key = breaker_key(name)
    data = store.get(key)
    return BreakerState() if data is None else BreakerState.from_dict(data, where=key)


def save_breaker(store: StateStore, name: str, state: BreakerState) -> None:
    store.set(breaker_key(name), state.to_dict())


def record_scan(
    store: StateStore,
    name: str,
    *,
    ok: bool,
    failure_threshold: int = 3,
    cooldown_scans: int = 2,
    reason: str | None = None,
    now: datetime | None = None,
) -> BreakerState:
    """Fold one scan's outcome into breaker ``name``, persist it and return the new state.

    ``ok`` is False for a failed or incomplete scan (``reason`` says why).
    """
    if failure_threshold <= 0:
        raise InputError("failure_threshold must be > 0")
    if cooldown_scans < 0:
        raise InputError("cooldown_scans must be >= 0")
    at = now or datetime.now(UTC)
    with transaction(store):
        return _fold(store, name, ok, failure_threshold, cooldown_scans, reason, at)


def _fold(
    store: StateStore,
    name: str,
    ok: bool,
    failure_threshold: int,
    cooldown_scans: int,
    reason: str | None,
    at: datetime,
) -> BreakerState:
    state = load_breaker(store, name)
    if ok:
        cooldown = max(0, state.cooldown_remaining - 1)
        new = replace(
            state,
            consecutive_failures=0,
            cooldown_remaining=cooldown,
            opened_at=state.opened_at if cooldown > 0 else None,
            last_scan_at=at,
        )
    else:
        failures = state.consecutive_failures + 1
        tripped = failures >= failure_threshold
        new = replace(
            state,
            consecutive_failures=failures,
            cooldown_remaining=cooldown_scans if tripped else state.cooldown_remaining,
            opened_at=(state.opened_at or at) if tripped else state.opened_at,
            last_failure=reason or "scan failed",
            last_scan_at=at,
        )
    save_breaker(store, name, new)
    return new


def breaker_evidence(
    state: BreakerState, *, failure_threshold: int = 3, action: str = "block"
) -> Evidence:
    """The breaker as decision evidence (rule ``breaker``; fires while open).

    ``data`` carries the 0.3 fields (``is_open``, ``allow_operation``, ``retry_after_steps``)
    that alert payloads report.
    """
    decision = state.decision(failure_threshold)
    if action not in ("throttle", "block"):
        raise InputError(f"breaker action must be 'throttle' or 'block', got {action!r}")
    detail = (
        f"circuit open after {state.consecutive_failures} consecutive failed scans"
        f" (cooldown {state.cooldown_remaining} scans)"
        if decision.is_open
        else ""
    )
    return Evidence(
        rule="breaker",
        fired=decision.is_open,
        observed=float(state.consecutive_failures),
        threshold=float(failure_threshold),
        action="block" if action == "block" else "throttle",
        detail=detail,
        data={
            "is_open": decision.is_open,
            "allow_operation": decision.allow_operation,
            "retry_after_steps": decision.retry_after_steps,
            "consecutive_failures": state.consecutive_failures,
            "cooldown_remaining": state.cooldown_remaining,
        },
    )
