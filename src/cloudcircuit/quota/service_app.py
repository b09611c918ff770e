"""The uvicorn factory behind ``cloudcircuit serve`` (one app per worker process).

Reads the YAML named by ``CLOUDCIRCUIT_QUOTA_CONFIG`` (optional) and the ledger URL override
``CLOUDCIRCUIT_QUOTA_LEDGER``; each worker builds its own ledger connection.
"""

from __future__ import annotations

import os

from cloudcircuit.quota.config import ServiceConfig, load_service_config

__all__ = ["build_app"]


def build_app() -> object:
    """A configured FastAPI app (uvicorn calls this with ``factory=True``)."""
    from cloudcircuit.quota.metrics import QuotaMetrics
    from cloudcircuit.quota.service import create_app

    path = os.environ.get("CLOUDCIRCUIT_QUOTA_CONFIG")
    ledger_url = os.environ.get("CLOUDCIRCUIT_QUOTA_LEDGER")
    if path:
        config = load_service_config(path, ledger=ledger_url)
    else:
        config = ServiceConfig(**({"ledger": ledger_url} if ledger_url else {}))
    metrics = QuotaMetrics()
    return create_app(
        config.build_ledger(observer=metrics),
        config.build_keys(),
        pricing=config.build_pricing(),
        metrics=metrics,
    )
