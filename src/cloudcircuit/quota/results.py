"""What the ledger answers: reservations (or denials), commits, releases, charges, usage.

All amounts here are in currency units (floats); the ledger keeps integer micro-units inside.
A :class:`Reservation` travels between processes as its opaque :attr:`Reservation.token`
(``reservation_id`` on the HTTP API), which names the request id and the scope chain, so any
worker can commit or release it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Literal

from cloudcircuit.errors import InputError, QuotaExceededError

__all__ = [
    "Charge",
    "Commit",
    "Denial",
    "DenialReason",
    "Release",
    "Reservation",
    "ScopeUsage",
    "decode_token",
    "encode_token",
]

DenialReason = Literal["limit", "ledger_unavailable", "unpriced", "invalid"]


def encode_token(request_id: str, entities: tuple[tuple[str, str], ...]) -> str:
    """Opaque reservation id: base64url of the request id and the scope entities."""
    raw = json.dumps({"r": request_id, "s": dict(entities)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, dict[str, str]]:
    """(request id, entities) of a reservation token; InputError when it is not one."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        request_id = data["r"]
        entities = data["s"]
        if not isinstance(request_id, str) or not isinstance(entities, dict):
            raise TypeError("bad token fields")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in entities.items()):
            raise TypeError("bad token scope")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InputError(f"reservation_id: not a reservation id: {token[:40]!r}") from None
    return request_id, entities


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a reservation was refused: the scope that refused and its numbers."""

    reason: DenialReason
    message: str
    scope: str | None = None
    level: str | None = None
    entity: str | None = None
    limit: float | None = None
    committed: float = 0.0
    held: float = 0.0
    requested: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "message": self.message,
            "scope": self.scope,
            "level": self.level,
            "entity": self.entity,
            "limit": self.limit,
            "committed": self.committed,
            "held": self.held,
            "requested": self.requested,
        }


@dataclass(frozen=True, slots=True)
class Reservation:
    """A hold on every scope of a chain (``allowed``), or a denial.

    ``replayed`` is True when the request id had been seen: this is its first outcome.
    ``degraded`` is True for a fail-open pass while the ledger was unreachable (nothing held).
    """

    request_id: str
    entities: tuple[tuple[str, str], ...]
    amount: float
    allowed: bool
    expires_at: float | None = None
    replayed: bool = False
    degraded: bool = False
    denial: Denial | None = None

    @property
    def token(self) -> str:
        """The reservation id other processes commit or release with."""
        return encode_token(self.request_id, self.entities)

    def raise_for_denial(self) -> Reservation:
        """Raise QuotaExceededError (carrying ``denial``) when refused; else return self."""
        if not self.allowed:
            assert self.denial is not None
            error = QuotaExceededError(self.denial.message)
            setattr(error, "denial", self.denial)  # noqa: B010 - QuotaExceededError is shared
            raise error
        return self


@dataclass(frozen=True, slots=True)
class Commit:
    """The actual cost charged for a reservation; ``late`` when it came after the TTL."""

    request_id: str
    actual: float
    late: bool
    replayed: bool


@dataclass(frozen=True, slots=True)
class Release:
    """A hold given back (``released``), or found already ``expired``."""

    request_id: str
    status: Literal["released", "expired"]
    replayed: bool


@dataclass(frozen=True, slots=True)
class Charge:
    """A post-hoc charge; ``over`` lists the scopes it left above their limit."""

    request_id: str
    amount: float
    over: tuple[str, ...]
    replayed: bool


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    """One scope's window: committed spend, open holds and limit (None: unlimited)."""

    scope: str
    level: str
    entity: str
    window: str
    committed: float
    held: float
    limit: float | None

    @property
    def remaining(self) -> float | None:
        if self.limit is None:
            return None
        return max(0.0, self.limit - self.committed - self.held)

    def to_dict(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "level": self.level,
            "entity": self.entity,
            "window": self.window,
            "committed": self.committed,
            "held": self.held,
            "limit": self.limit,
            "remaining": self.remaining,
        }
