"""The coreason-budget 0.4 API on the ledger; pricing overrides and unknown models; __all__."""

from __future__ import annotations

import asyncio
import importlib
import math
from dataclasses import dataclass
from typing import Any

import pytest

from cloudcircuit.errors import InputError, PricingError
from cloudcircuit.quota import BudgetConfig, BudgetExceededError, BudgetManager, Pricing


@pytest.fixture(params=["memory", "sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'compat.db'}"
    else:
        from quota_helpers import delete_prefix

        base = request.getfixturevalue("redis_url")
        prefix = f"cc-test-compat-{id(tmp_path)}:"
        url = f"{base}?prefix={prefix}"
        request.addfinalizer(lambda: delete_prefix(base, prefix))
    return BudgetConfig(
        redis_url=url,
        daily_user_limit_usd=1.0,
        daily_project_limit_usd=2.5,
        daily_global_limit_usd=100.0,
        model_price_overrides={
            "gpt-4": {"input_cost_per_token": 3e-5, "output_cost_per_token": 6e-5}
        },
    )


def test_check_then_record_like_coreason(config: BudgetConfig) -> None:
    budget = BudgetManager(config)

    async def flow() -> None:
        assert await budget.check_availability("user_123", estimated_cost=0.5)
        cost = budget.pricing.calculate(model="gpt-4", input_tokens=10_000, output_tokens=5_000)
        assert cost == pytest.approx(0.6)
        await budget.record_spend(user_id="user_123", cost=cost, project_id="alpha", model="gpt-4")
        with pytest.raises(BudgetExceededError, match="User daily limit exceeded for user_123"):
            await budget.check_availability("user_123", "alpha", estimated_cost=0.5)
        # the user's counter spans projects, as in coreason-budget
        with pytest.raises(BudgetExceededError, match="User"):
            await budget.check_availability("user_123", "beta", estimated_cost=0.5)

    asyncio.run(flow())
    budget.record_spend_sync("u2", 0.9, project_id="alpha")
    budget.record_spend_sync("u3", 0.9, project_id="alpha")
    with pytest.raises(BudgetExceededError, match="Project daily limit exceeded for alpha"):
        budget.check_availability_sync("u4", "alpha", estimated_cost=0.2)
    assert budget.check_availability_sync("u4", "beta", estimated_cost=0.2)
    budget.close_sync()


@dataclass
class UserContext:
    user_id: str


def test_validation_and_user_context(config: BudgetConfig) -> None:
    budget = BudgetManager(config)
    assert budget.check_availability_sync(UserContext("ctx-user"))
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(InputError, match="cost"):
            budget.record_spend_sync("u", bad)
    with pytest.raises(InputError, match="estimated_cost"):
        budget.check_availability_sync("u", estimated_cost=-0.1)
    with pytest.raises(InputError, match="user_id"):
        budget.check_availability_sync("  ")
    with pytest.raises(InputError, match="project_id"):
        budget.record_spend_sync("u", 1.0, project_id="")
    with pytest.raises(InputError, match="model"):
        budget.record_spend_sync("u", 1.0, model=" ")
    budget.record_spend_sync("u", 0.4, request_id="once")
    budget.record_spend_sync("u", 0.4, request_id="once")
    assert budget.ledger.usage({"user": "u"})[-1].committed == 0.4


def test_config_reads_both_env_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREASON_BUDGET_REDIS_URL", "memory://")
    monkeypatch.setenv("CLOUDCIRCUIT_BUDGET_DAILY_USER_LIMIT_USD", "7.5")
    monkeypatch.setenv("COREASON_BUDGET_DAILY_GLOBAL_LIMIT_USD", "900")
    config = BudgetConfig()
    assert (config.redis_url, config.daily_user_limit_usd) == ("memory://", 7.5)
    assert config.daily_global_limit_usd == 900.0 and config.daily_project_limit_usd == 500.0
    monkeypatch.delenv("CLOUDCIRCUIT_BUDGET_DAILY_USER_LIMIT_USD")
    assert BudgetConfig(redis_url="memory://", daily_limit_usd=3.0).daily_user_limit_usd == 3.0
    with pytest.raises(ValueError, match="daily_user_limit_usd"):
        BudgetConfig(redis_url="memory://", daily_user_limit_usd=math.inf)


def test_pricing_overrides_and_unknown_models() -> None:
    pricing = Pricing({"mine": {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}})
    assert pricing.calculate("mine", 1000, 500) == pytest.approx(0.003)
    with pytest.raises(PricingError, match="'nobody-knows-this-model'"):
        pricing.calculate("nobody-knows-this-model", 1, 1)
    with pytest.raises(ValueError):  # coreason raised ValueError: PricingError is one
        Pricing(use_litellm=False).calculate("mine", 1, 1)
    with pytest.raises(InputError, match="input_tokens"):
        pricing.calculate("mine", -1, 1)
    with pytest.raises(InputError, match="unknown keys"):
        Pricing({"x": {"input_cost": 1.0}})
    with pytest.raises(InputError, match="output_cost_per_token"):
        Pricing({"x": {"output_cost_per_token": -1.0}})


def test_unknown_model_message_names_the_extra_without_litellm() -> None:
    try:
        importlib.import_module("litellm")
    except ImportError:
        with pytest.raises(PricingError, match=r"cloudcircuit\[litellm\]"):
            Pricing().calculate("gpt-4", 1, 1)
    else:  # pragma: no cover - litellm installed: its table prices well-known models
        assert Pricing().calculate("gpt-4", 1000, 0) > 0


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (1, name)
    if name[0].isupper():
        return (2, name)
    return (3, name)


@pytest.mark.parametrize(
    "module",
    [
        "cloudcircuit.quota",
        "cloudcircuit.quota.ledger",
        "cloudcircuit.quota.model",
        "cloudcircuit.quota.results",
        "cloudcircuit.quota.compat",
        "cloudcircuit.quota.pricing",
        "cloudcircuit.quota.service",
        "cloudcircuit.quota.schemas",
        "cloudcircuit.quota.middleware",
        "cloudcircuit.quota.backends",
        "cloudcircuit.quota.backends.redis",
    ],
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names, key=_isort_key)
    for name in names:
        assert hasattr(mod, name), name


def test_coreason_names_import_from_quota() -> None:
    from cloudcircuit.errors import BudgetExceededError as Base

    assert BudgetExceededError is Base
    exported: dict[str, Any] = vars(importlib.import_module("cloudcircuit.quota"))
    assert {"BudgetConfig", "BudgetManager", "BudgetExceededError"} <= set(exported["__all__"])
