"""Configuration of the quota service (``cloudcircuit serve --config quota.yaml``).

::

    ledger: redis://127.0.0.1:6379/0          # or sqlite:///quota.db, redis+cluster://...
    timeout_seconds: 0.5                      # fail closed after this long
    default_ttl_seconds: 60                   # reservations give their hold back after this
    hierarchy:
      levels:
        - {name: global, shared: true, limit: 5000}
        - {name: project, limit: 500, window: month}
        - {name: user, limit: 10, window: "rolling:3600", fail_open: false}
      overrides: {"project=p1": 2000}
    keys:
      - {name: p1-backend, sha256: "sha256:…", scopes: [{project: p1}]}
      - {name: ops, sha256: "sha256:…", admin: true}
    model_price_overrides: {my-model: {input_cost_per_token: 1.0e-6, output_cost_per_token: 2.0e-6}}

Every problem is reported with its path (``keys.0.sha256: ...``) and the file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudcircuit.errors import ConfigError
from cloudcircuit.quota.auth import ApiKeyConfig, ApiKeyStore
from cloudcircuit.quota.ledger import DEFAULT_URL, Ledger
from cloudcircuit.quota.model import Hierarchy
from cloudcircuit.quota.pricing import Pricing

__all__ = ["ServiceConfig", "load_service_config"]


class ServiceConfig(BaseModel):
    """Everything the HTTP service needs: ledger URL, hierarchy, keys, prices."""

    model_config = ConfigDict(extra="forbid")

    ledger: str = DEFAULT_URL
    timeout_seconds: float = Field(0.5, gt=0, le=30)
    default_ttl_seconds: float = Field(60.0, gt=0, le=86_400)
    hierarchy: Hierarchy = Hierarchy()
    keys: list[ApiKeyConfig] = Field(default_factory=list)
    model_price_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    use_litellm: bool = True

    def build_ledger(self, **kwargs: Any) -> Ledger:
        return Ledger(
            self.ledger,
            self.hierarchy,
            timeout=self.timeout_seconds,
            default_ttl=self.default_ttl_seconds,
            **kwargs,
        )

    def build_keys(self) -> ApiKeyStore:
        return ApiKeyStore(key.to_key() for key in self.keys)

    def build_pricing(self) -> Pricing:
        return Pricing(self.model_price_overrides, use_litellm=self.use_litellm)


def load_service_config(path: str | Path, **overrides: Any) -> ServiceConfig:
    """Read and validate a YAML service configuration (ConfigError lists every problem)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        raise ConfigError([(where, str(getattr(exc, "problem", exc)))], source=source) from None
    if not isinstance(data, dict):
        raise ConfigError("the file must hold a mapping", source=source)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(problems, source=source) from None
