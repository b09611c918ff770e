"""Quota hierarchy: levels, windows, scope chains and amounts.

A *hierarchy* is an ordered list of levels (``global > project > user`` by default, or any
chain such as ``org > team > key``). A request names one entity per level (``{"project": "p1",
"user": "u1"}``); :meth:`Hierarchy.resolve` turns that into a :class:`Chain` of scopes, each
with its key (``global/project=p1/user=u1``), its limit (per-entity override, else the level's
default) and its window. Every operation of the ledger covers the whole chain at once.

Amounts are kept as integer micro-units (1e-6 of the currency) so that sums are exact and a
limit comparison never depends on float rounding; :func:`to_units` rejects negative, NaN and
infinite amounts with an error naming the field.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloudcircuit.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_LEVELS",
    "MAX_AMOUNT",
    "UNITS",
    "Chain",
    "Hierarchy",
    "Level",
    "Scope",
    "Window",
    "check_request_id",
    "from_units",
    "parse_scope_path",
    "to_units",
]

UNITS = 1_000_000
"""Micro-units per currency unit: amounts are stored as integers of 1e-6."""

MAX_AMOUNT = 1e9
"""Largest single amount or limit accepted (keeps every counter exact in a double)."""

_ENTITY = re.compile(r"[^\s/{}|=\\]{1,128}")
_ENTITY_RULE = "must be 1-128 characters without spaces or any of / { } | = \\"
_LEVEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_GRACE_MS = 86_400_000  # counters outlive their window by a day, then Redis/SQLite drop them


def to_units(amount: float, field: str = "amount") -> int:
    """Validate an amount (finite, >= 0, <= MAX_AMOUNT) and convert it to micro-units."""
    if type(amount) is float and 0.0 <= amount <= MAX_AMOUNT:  # the common case (NaN fails)
        return round(amount * UNITS)
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise InputError(f"{field}: must be a number, got {type(amount).__name__}")
    value = float(amount)
    if math.isnan(value) or math.isinf(value):
        raise InputError(f"{field}: must be a finite number, got {value}")
    if value < 0:
        raise InputError(f"{field}: must not be negative, got {value}")
    if value > MAX_AMOUNT:
        raise InputError(f"{field}: must be at most {MAX_AMOUNT:g}, got {value}")
    return round(value * UNITS)


def from_units(units: int) -> float:
    """Micro-units back to currency units."""
    return units / UNITS


def check_request_id(request_id: str) -> str:
    """A request id is 1-128 characters, no whitespace, none of ``/ { } | = \\``."""
    if not isinstance(request_id, str) or not _ENTITY.fullmatch(request_id):
        raise InputError(f"request_id: {_ENTITY_RULE}, got {request_id!r}")
    return request_id


class Window(BaseModel):
    """A counting window: calendar UTC ``day`` or ``month``, or ``rolling`` seconds.

    Usage is the sum of committed amounts over the window's buckets. Calendar windows have one
    bucket (the day or month) and reset at UTC midnight / the first of the month; a rolling
    window of ``seconds`` is cut into ``buckets`` equal buckets and slides bucket by bucket.
    The string forms ``"day"``, ``"month"`` and ``"rolling:3600"`` are accepted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["day", "month", "rolling"] = "day"
    seconds: int = Field(default=0, ge=0, le=400 * 86_400)
    buckets: int = Field(default=60, ge=1, le=1440)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: object) -> object:
        if isinstance(data, str):
            kind, _, rest = data.partition(":")
            if kind == "rolling":
                try:
                    return {"kind": "rolling", "seconds": int(rest)}
                except ValueError:
                    raise ValueError(
                        f"rolling window needs seconds: 'rolling:3600', got {data!r}"
                    ) from None
            return {"kind": kind}
        return data

    @model_validator(mode="after")
    def _check(self) -> Window:
        if self.kind == "rolling":
            if self.seconds <= 0:
                raise ValueError("a rolling window needs seconds > 0")
            if (self.seconds * 1000) % self.buckets:
                raise ValueError("seconds * 1000 must be a multiple of buckets")
        return self

    @property
    def code(self) -> str:
        """Short code used in storage keys (a changed window never reads old counters)."""
        if self.kind == "rolling":
            return f"r{self.seconds}x{self.buckets}"
        return self.kind[0]

    def span(self, now_ms: int) -> tuple[int, int, int]:
        """(first bucket, current bucket, expiry in ms) of the window containing ``now_ms``."""
        if self.kind == "day":
            day = now_ms // 86_400_000
            return day, day, (day + 1) * 86_400_000 + _GRACE_MS
        if self.kind == "month":
            moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
            bucket = moment.year * 12 + moment.month - 1
            days = calendar.monthrange(moment.year, moment.month)[1]
            start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
            end_ms = int(start.timestamp() * 1000) + days * 86_400_000
            return bucket, bucket, end_ms + _GRACE_MS
        width = self.seconds * 1000 // self.buckets
        bucket = now_ms // width
        return bucket - self.buckets + 1, bucket, (bucket + 1) * width + self.seconds * 1000


class Level(BaseModel):
    """One level of the hierarchy.

    ``limit`` is the default limit of every entity at this level (None: tracked, unlimited);
    ``shared`` marks a level with a single entity (``global``); ``nested`` False keys the level
    by its entity alone under the root (a user's usage across all projects) instead of under
    the levels before it; ``required`` makes the entity mandatory in every request;
    ``fail_open`` lets requests through when the ledger cannot be reached (opt-in).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    limit: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    window: Window = Window()
    shared: bool = False
    nested: bool = True
    required: bool = False
    fail_open: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _LEVEL.fullmatch(value):
            raise ValueError("must be lowercase letters, digits and _ (1-32), starting a letter")
        return value


DEFAULT_LEVELS: tuple[Level, ...] = (
    Level(name="global", shared=True),
    Level(name="project"),
    Level(name="user"),
)


@dataclass(frozen=True, slots=True)
class Scope:
    """One resolved scope of a chain: its storage key, level, entity, limit and window."""

    key: str
    level: str
    entity: str
    limit: int | None
    window: Window
    fail_open: bool


@dataclass(frozen=True, slots=True)
class Chain:
    """The scopes a request touches, outermost first. ``root`` is the hash tag on Redis.

    ``root``, ``request_prefix`` (the leaf key and "|", which a request id follows in the
    idempotency key) and ``levels`` are computed once: the ledger reads them on every call.
    """

    scopes: tuple[Scope, ...]
    entities: tuple[tuple[str, str], ...]
    root: str = field(init=False, repr=False, compare=False)
    request_prefix: str = field(init=False, repr=False, compare=False)
    levels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.scopes[0].key
        cut = key.find("/")
        object.__setattr__(self, "root", key if cut < 0 else key[:cut])
        object.__setattr__(self, "request_prefix", self.scopes[-1].key + "|")
        object.__setattr__(self, "levels", tuple(scope.level for scope in self.scopes))

    @property
    def leaf(self) -> Scope:
        return self.scopes[-1]

    @property
    def fail_open(self) -> bool:
        """True when every scope of the chain opted in to fail-open."""
        return all(scope.fail_open for scope in self.scopes)


class Hierarchy(BaseModel):
    """Levels (outermost first) and per-entity limit overrides.

    Override keys are either a full scope key (``global/project=p1/user=u1``) or
    ``level=entity`` (``project=p1``), the full key winning; a value of None means unlimited.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    levels: tuple[Level, ...] = DEFAULT_LEVELS
    overrides: dict[str, float | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Hierarchy:
        if not self.levels:
            raise ValueError("levels: at least one level is needed")
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"levels: names must be unique, got {names}")
        for key, value in self.overrides.items():
            if value is not None and not (0 <= value <= MAX_AMOUNT and math.isfinite(value)):
                raise ValueError(f"overrides[{key!r}]: must be between 0 and {MAX_AMOUNT:g}")
        return self

    @classmethod
    def build(cls, data: Mapping[str, object], *, source: str | None = None) -> Hierarchy:
        """Validate a mapping (from a config file), raising ConfigError with every problem."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]
            raise ConfigError(problems, source=source) from None

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise InputError(f"scope: unknown level {name!r}; levels are {list(self.level_names)}")

    def resolve(self, entities: Mapping[str, str | None]) -> Chain:
        """The chain for a request naming one entity per level (missing levels are skipped)."""
        known = set(self.level_names)
        unknown = sorted(set(entities) - known)
        if unknown:
            raise InputError(
                f"scope: unknown level(s) {unknown}; levels are {list(self.level_names)}"
            )
        scopes: list[Scope] = []
        named: list[tuple[str, str]] = []
        path: list[str] = []
        for level in self.levels:
            if level.shared:
                part = level.name
                entity = "*"
            else:
                value = entities.get(level.name)
                if value is None:
                    if level.required:
                        raise InputError(f"scope.{level.name}: is required")
                    continue
                if not isinstance(value, str) or not _ENTITY.fullmatch(value):
                    raise InputError(f"scope.{level.name}: {_ENTITY_RULE}, got {value!r}")
                entity = value
                part = f"{level.name}={value}"
                named.append((level.name, value))
            if level.nested or not path:
                path.append(part)
                key = "/".join(path)
            else:
                key = f"{path[0]}/{part}"
            scopes.append(
                Scope(
                    key=key,
                    level=level.name,
                    entity=entity,
                    limit=self._limit(level, key, part),
                    window=level.window,
                    fail_open=level.fail_open,
                )
            )
        if not scopes:
            raise InputError(f"scope: names no level; levels are {list(self.level_names)}")
        return Chain(scopes=tuple(scopes), entities=tuple(named))

    def _limit(self, level: Level, key: str, part: str) -> int | None:
        if key in self.overrides:
            value = self.overrides[key]
        elif part in self.overrides:
            value = self.overrides[part]
        else:
            value = level.limit
        return None if value is None else to_units(value, f"limit of {key}")


def parse_scope_path(text: str, hierarchy: Hierarchy) -> dict[str, str]:
    """``"project=p1/user=u1"`` (or a full key with ``global/``) -> ``{"project": "p1", ...}``."""
    result: dict[str, str] = {}
    shared = {level.name for level in hierarchy.levels if level.shared}
    for part in (p for p in text.split("/") if p):
        if part in shared:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"scope: expected level=entity, got {part!r}")
        hierarchy.level(name)
        result[name] = value
    return result
