"""The coreason-budget 0.4 API on top of the ledger (switch by changing the import).

``BudgetConfig`` reads the same fields (and ``CLOUDCIRCUIT_BUDGET_*`` or the old
``COREASON_BUDGET_*`` environment variables); ``BudgetManager`` keeps ``check_availability`` /
``record_spend`` with their sync twins and ``pricing.calculate``. The differences are the
weaknesses API.md lists: one round trip per call covering global, project and user; negative
costs rejected (no refunds through a charge); and the atomic path is there when wanted:
``manager.ledger.reserve(...)`` / ``commit(...)`` hold the estimate so concurrent callers can
not overshoot, which a separate check and charge never can.

The chain is ``global > project > user``, all calendar UTC days (counters reset at UTC
midnight); the user's counter spans all of their projects, as in coreason-budget.
``redis_url`` accepts any ledger URL (``sqlite:///``, ``memory://``, ``redis://``...).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloudcircuit.errors import BudgetExceededError, InputError
from cloudcircuit.quota.ledger import Ledger
from cloudcircuit.quota.model import Hierarchy, Level
from cloudcircuit.quota.pricing import Pricing
from cloudcircuit.quota.results import ScopeUsage

__all__ = ["BudgetConfig", "BudgetExceededError", "BudgetManager"]


def _env(name: str) -> AliasChoices:
    upper = name.upper()
    return AliasChoices(name, f"CLOUDCIRCUIT_BUDGET_{upper}", f"COREASON_BUDGET_{upper}")


class BudgetConfig(BaseSettings):
    """coreason-budget 0.4 settings (``daily_limit_usd`` is accepted for the user limit)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    redis_url: str = Field(validation_alias=_env("redis_url"))
    daily_user_limit_usd: float = Field(
        10.0, ge=0, allow_inf_nan=False, validation_alias=_env("daily_user_limit_usd")
    )
    daily_project_limit_usd: float = Field(
        500.0, ge=0, allow_inf_nan=False, validation_alias=_env("daily_project_limit_usd")
    )
    daily_global_limit_usd: float = Field(
        5000.0, ge=0, allow_inf_nan=False, validation_alias=_env("daily_global_limit_usd")
    )
    model_price_overrides: dict[str, dict[str, float]] = Field(
        default_factory=dict, validation_alias=_env("model_price_overrides")
    )
    ledger_timeout_seconds: float = Field(
        0.5, gt=0, le=30, validation_alias=_env("ledger_timeout_seconds")
    )
    use_litellm: bool = Field(True, validation_alias=_env("use_litellm"))

    @model_validator(mode="before")
    @classmethod
    def _daily_limit_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "daily_limit_usd" in data:
            data = dict(data)
            data.setdefault("daily_user_limit_usd", data.pop("daily_limit_usd"))
        return data

    def hierarchy(self) -> Hierarchy:
        """The ``global > project > user`` chain with these daily limits."""
        return Hierarchy(
            levels=(
                Level(name="global", shared=True, limit=self.daily_global_limit_usd),
                Level(name="project", limit=self.daily_project_limit_usd),
                Level(name="user", limit=self.daily_user_limit_usd, nested=False, required=True),
            )
        )


class _HasUserId(Protocol):
    user_id: str


def _user(user: str | _HasUserId) -> str:
    """coreason 0.4.1 passed a UserContext; API.md's form is the plain user id."""
    user_id = user if isinstance(user, str) else getattr(user, "user_id", None)
    if not isinstance(user_id, str) or not user_id.strip():
        raise InputError("user_id: must be a non-empty string")
    return user_id


def _project(project_id: str | None) -> str | None:
    if project_id is not None and (not isinstance(project_id, str) or not project_id.strip()):
        raise InputError("project_id: must be a non-empty string if provided")
    return project_id


def _over(usage: list[ScopeUsage], estimate: float) -> None:
    for scope in usage:
        if scope.limit is None:
            continue
        used = scope.committed + scope.held
        if used + estimate > scope.limit:
            who = "Global" if scope.level == "global" else scope.level.capitalize()
            target = "" if scope.level == "global" else f" for {scope.entity}"
            raise BudgetExceededError(
                f"{who} daily limit exceeded{target}: used {used:.6g} + estimated "
                f"{estimate:.6g} > limit {scope.limit:.6g} ({scope.scope})"
            )


class BudgetManager:
    """coreason-budget's manager: check, record, price; async methods and sync twins."""

    def __init__(self, config: BudgetConfig, *, ledger: Ledger | None = None) -> None:
        self.config = config
        self.ledger = ledger or Ledger(
            config.redis_url, config.hierarchy(), timeout=config.ledger_timeout_seconds
        )
        self.pricing = Pricing(config.model_price_overrides, use_litellm=config.use_litellm)

    @staticmethod
    def _scope(user: str | _HasUserId, project_id: str | None) -> dict[str, str | None]:
        return {"project": _project(project_id), "user": _user(user)}

    @staticmethod
    def _estimate(value: float, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{field}: must be a number")
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{field}: must be a finite number >= 0, got {value}")
        return float(value)

    async def check_availability(
        self,
        user_id: str | _HasUserId,
        project_id: str | None = None,
        estimated_cost: float = 0.0,
    ) -> bool:
        """Raise BudgetExceededError when global, project or user would pass its limit."""
        estimate = self._estimate(estimated_cost, "estimated_cost")
        _over(await self.ledger.ausage(self._scope(user_id, project_id)), estimate)
        return True

    def check_availability_sync(
        self,
        user_id: str | _HasUserId,
        project_id: str | None = None,
        estimated_cost: float = 0.0,
    ) -> bool:
        """Sync twin of :meth:`check_availability`."""
        estimate = self._estimate(estimated_cost, "estimated_cost")
        _over(self.ledger.usage(self._scope(user_id, project_id)), estimate)
        return True

    @staticmethod
    def _model(model: str | None) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise InputError("model: must be a non-empty string if provided")

    async def record_spend(
        self,
        user_id: str | _HasUserId,
        cost: float,
        project_id: str | None = None,
        model: str | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Add ``cost`` to the global, project and user counters (one round trip)."""
        self._model(model)
        amount = self._estimate(cost, "cost")
        await self.ledger.acharge(self._scope(user_id, project_id), amount, request_id=request_id)

    def record_spend_sync(
        self,
        user_id: str | _HasUserId,
        cost: float,
        project_id: str | None = None,
        model: str | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Sync twin of :meth:`record_spend`."""
        self._model(model)
        amount = self._estimate(cost, "cost")
        self.ledger.charge(self._scope(user_id, project_id), amount, request_id=request_id)

    async def close(self) -> None:
        """Release the ledger's connections."""
        self.ledger.close()

    def close_sync(self) -> None:
        """Sync twin of :meth:`close`."""
        self.ledger.close()
