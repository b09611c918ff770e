"""Shared fixtures: paths to ../shared/data (skipping, with the reason, where it is absent),
the Redis URL (REDIS_URL, default the local server) and a 3-master Redis Cluster on loopback
(one per session, started on first use)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_helpers import RedisCluster

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CLOUDCIRCUIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, present in CI; absent in a user's clone, where the test is skipped."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared sample data at {SHARED_DATA} (present in CI only)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (REDIS_URL or 127.0.0.1:6379); skips when none answers."""
    try:
        import redis
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.skip("redis-py is not installed (pip install 'cloudcircuit[redis]')")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli binaries are not installed: no Redis Cluster")
    pytest.importorskip("redis")
    cluster = RedisCluster()
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()
