"""Model prices: configuration overrides first, then litellm's price table when installed.

A cost that cannot be priced raises :class:`~cloudcircuit.errors.PricingError` (a ValueError,
as coreason-budget raised), which the ledger's callers turn into a denial under fail-closed.
litellm is an optional extra (``pip install 'cloudcircuit[litellm]'``) imported on first use
only: it is large and slow to import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudcircuit.errors import InputError, PricingError

__all__ = ["ModelPrice", "Pricing", "litellm_price"]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Cost per input and per output token, in the ledger's currency."""

    input_cost_per_token: float
    output_cost_per_token: float

    def __post_init__(self) -> None:
        for name in ("input_cost_per_token", "output_cost_per_token"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name}: must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{name}: must be a finite number >= 0, got {value}")

    @classmethod
    def of(cls, model: str, value: ModelPrice | Mapping[str, Any]) -> ModelPrice:
        if isinstance(value, ModelPrice):
            return value
        unknown = set(value) - {"input_cost_per_token", "output_cost_per_token"}
        if unknown:
            raise InputError(f"model_price_overrides[{model!r}]: unknown keys {sorted(unknown)}")
        try:
            return cls(
                float(value.get("input_cost_per_token", 0.0)),
                float(value.get("output_cost_per_token", 0.0)),
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"model_price_overrides[{model!r}]: {exc}") from None


def litellm_price(model: str) -> ModelPrice | None:
    """The price of ``model`` in litellm's table; None when unknown or litellm is absent."""
    try:
        import litellm
    except ImportError:
        return None
    entry = getattr(litellm, "model_cost", {}).get(model)
    if not isinstance(entry, Mapping):
        return None
    try:
        return ModelPrice(
            float(entry.get("input_cost_per_token") or 0.0),
            float(entry.get("output_cost_per_token") or 0.0),
        )
    except (InputError, TypeError, ValueError):
        return None


class Pricing:
    """Prices token usage: ``calculate(model, input_tokens, output_tokens) -> cost``."""

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        use_litellm: bool = True,
    ) -> None:
        self.overrides = {m: ModelPrice.of(m, p) for m, p in (overrides or {}).items()}
        self.use_litellm = use_litellm

    def price(self, model: str) -> ModelPrice:
        """The per-token price of ``model``; PricingError when nothing knows it."""
        if not isinstance(model, str) or not model.strip():
            raise InputError("model: must be a non-empty string")
        if model in self.overrides:
            return self.overrides[model]
        found = litellm_price(model) if self.use_litellm else None
        if found is None:
            hint = (
                "add it to model_price_overrides"
                if self._litellm_installed()
                else "add it to model_price_overrides or pip install 'cloudcircuit[litellm]'"
            )
            raise PricingError(f"model {model!r}: no price known; {hint}")
        return found

    def _litellm_installed(self) -> bool:
        if not self.use_litellm:
            return False
        try:
            import litellm  # noqa: F401
        except ImportError:
            return False
        return True

    def calculate(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Cost of ``input_tokens`` + ``output_tokens`` of ``model``."""
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name}: must be an integer >= 0, got {value!r}")
        price = self.price(model)
        cost = input_tokens * price.input_cost_per_token
        cost += output_tokens * price.output_cost_per_token
        return float(cost)

    calculate_cost = calculate
