"""Fixtures of the quota tests: one parametrized ledger factory over every backend.

``backend_url`` is the contract fixture: SQLite file, memory, the shared Redis (a key prefix
unique to this run, only those keys deleted afterwards) and a 3-master Redis Cluster that this
session starts on free loopback ports (skipped with the reason when redis-server is missing).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from quota_helpers import RedisCluster, delete_prefix

from cloudcircuit.quota import Ledger
from cloudcircuit.quota.backends import open_backend
from cloudcircuit.quota.model import Hierarchy

RUN = uuid.uuid4().hex[:10]
BACKENDS = ["memory", "sqlite", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger URL on each backend."""
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'quota.db'}"
    elif kind == "redis":
        base = request.getfixturevalue("redis_url")
        prefix = f"cc-test-{RUN}-{uuid.uuid4().hex[:8]}:"
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}prefix={prefix}"
        delete_prefix(base, prefix)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        prefix = f"cc-test-{uuid.uuid4().hex[:8]}:"
        yield f"{cluster.url}?prefix={prefix}"


LedgerFactory = Callable[..., Ledger]


@pytest.fixture
def make_ledger(backend_url: str) -> Iterator[LedgerFactory]:
    """Ledgers on the parametrized backend; every ledger of one test shares one store."""
    backends: list[Any] = []

    def make(hierarchy: Hierarchy | None = None, **kwargs: Any) -> Ledger:
        if not backends:
            backends.append(open_backend(backend_url, timeout=2.0))
        return Ledger(backends[0], hierarchy, **kwargs)

    yield make
    for backend in backends:
        backend.close()
