"""Runtime spend quotas: an atomic hierarchical ledger (reserve, commit, release, charge).

::

    from cloudcircuit.quota import Hierarchy, Ledger, Level

    ledger = Ledger("redis://127.0.0.1:6379/0", Hierarchy(levels=(
        Level(name="global", shared=True, limit=5000),
        Level(name="project", limit=500),
        Level(name="user", limit=10),
    )))
    held = ledger.reserve({"project": "p1", "user": "u1"}, 0.20).raise_for_denial()
    ...                                     # the expensive call
    ledger.commit(held, actual=0.13)         # or ledger.release(held) when it failed

Each operation is one round trip covering every scope of the chain (a Lua script on Redis,
one transaction on SQLite). The coreason-budget 0.4 API (``BudgetConfig``, ``BudgetManager``,
``BudgetExceededError``) is here too; the HTTP service is :mod:`cloudcircuit.quota.service`
(``cloudcircuit serve``) and the ASGI middleware :class:`QuotaMiddleware`.
"""

from cloudcircuit.errors import (
    BudgetExceededError,
    LedgerUnavailableError,
    PricingError,
    QuotaError,
    QuotaExceededError,
    ReservationError,
)
from cloudcircuit.quota.auth import ApiKey, ApiKeyStore, generate_api_key, hash_api_key
from cloudcircuit.quota.backends import open_backend
from cloudcircuit.quota.compat import BudgetConfig, BudgetManager
from cloudcircuit.quota.config import ServiceConfig, load_service_config
from cloudcircuit.quota.ledger import DEFAULT_URL, Ledger
from cloudcircuit.quota.metrics import QuotaMetrics
from cloudcircuit.quota.middleware import QuotaMiddleware
from cloudcircuit.quota.model import Chain, Hierarchy, Level, Scope, Window
from cloudcircuit.quota.pricing import ModelPrice, Pricing
from cloudcircuit.quota.results import (
    Charge,
    Commit,
    Denial,
    Release,
    Reservation,
    ScopeUsage,
)

__all__ = [
    "DEFAULT_URL",
    "ApiKey",
    "ApiKeyStore",
    "BudgetConfig",
    "BudgetExceededError",
    "BudgetManager",
    "Chain",
    "Charge",
    "Commit",
    "Denial",
    "Hierarchy",
    "Ledger",
    "LedgerUnavailableError",
    "Level",
    "ModelPrice",
    "Pricing",
    "PricingError",
    "QuotaError",
    "QuotaExceededError",
    "QuotaMetrics",
    "QuotaMiddleware",
    "Release",
    "Reservation",
    "ReservationError",
    "Scope",
    "ScopeUsage",
    "ServiceConfig",
    "Window",
    "generate_api_key",
    "hash_api_key",
    "load_service_config",
    "open_backend",
]
