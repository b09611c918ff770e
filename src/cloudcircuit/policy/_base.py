"""What every policy model shares: frozen, unknown keys forbidden, and validator helpers.

:class:`ProblemsError` lets one validator report several problems, each at its own path, which
the loader turns into one ``path: message`` line each.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NonNegativeFloat",
    "PolicyModel",
    "PositiveFloat",
    "ProblemsError",
    "RuleAction",
    "Severity",
    "check_env_name",
    "check_name",
    "check_url",
    "duplicate_names",
    "non_empty_strings",
    "repeated",
    "suggest",
]

RuleAction = Literal["throttle", "block"]
Severity = Literal["info", "warning", "critical"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PolicyModel(BaseModel):
    """Base of every policy model: unknown keys are errors, validated values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ProblemsError(ValueError):
    """Several problems found by one validator, each with a path relative to the model.

    The policy loader splits it into one line per problem (``budgets[1].name: ...``).
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.problems))


def check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must start with a letter or digit and contain only letters, "
            "digits, '_', '.', ':' or '-'"
        )
    return value


def check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_RE.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (letters, digits, '_'; "
            "no '$' or braces: write the name, not its value)"
        )
    return value


def check_url(value: str, *, https_only: bool = False) -> str:
    """An absolute http(s) URL. The message does not echo the URL: webhook URLs carry tokens,
    and validation output ends up in CI logs."""
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    wanted = " or ".join(f"{s}://" for s in schemes)
    if not value.strip():
        raise ValueError(f"must be an absolute {wanted} URL, got an empty string")
    if parts.scheme not in schemes:
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"must be an absolute {wanted} URL, got {got}")
    if not parts.hostname:
        raise ValueError(f"must be an absolute {wanted} URL, got no host name")
    return value


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_WHAT = {"budgets": "budget", "sources": "source", "alerts": "alert sink"}


def duplicate_names(lists: Mapping[str, Sequence[object]]) -> list[tuple[str, str]]:
    """``budgets[3].name: budget name 'x' is already used by budgets[0]`` for each repeat.

    Used by the Policy validator and, on raw data, by the loader (so repeats are reported even
    when other fields fail and the Policy validator never runs).
    """
    problems: list[tuple[str, str]] = []
    for field_name, names in lists.items():
        what = _WHAT.get(field_name, field_name)
        first: dict[str, int] = {}
        for i, name in enumerate(names):
            if not isinstance(name, str):
                continue
            if name in first:
                problems.append(
                    (
                        f"{field_name}[{i}].name",
                        f"{what} name {name!r} is already used by {field_name}[{first[name]}]",
                    )
                )
            else:
                first[name] = i
    return problems


def repeated(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for name in names:
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    return dup


def non_empty_strings(values: Sequence[str], what: str) -> list[str]:
    out = [v.strip() for v in values]
    if any(not v for v in out):
        raise ValueError(f"{what} must not contain empty strings")
    return out
