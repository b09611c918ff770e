"""Helpers of the quota tests: a settable clock, an own redis-server, a served app (free ports,
key cleanup and the test Redis Cluster come from tests/redis_helpers.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis_helpers import RedisCluster, delete_prefix, free_port, wait_ping

from cloudcircuit.quota import Hierarchy, Level

__all__ = [
    "Clock",
    "OwnRedis",
    "RedisCluster",
    "delete_prefix",
    "free_port",
    "serve_app",
    "three_levels",
]


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def three_levels(global_: float | None = 100.0, project: float | None = 10.0,
                 user: float | None = 3.0, **level: Any) -> Hierarchy:  # fmt: skip
    """global > project > user with the given default limits."""
    return Hierarchy(
        levels=(
            Level(name="global", shared=True, limit=global_, **level),
            Level(name="project", limit=project, **level),
            Level(name="user", limit=user, **level),
        )
    )


class OwnRedis:
    """A redis-server of our own on a free loopback port (AOF on, fsync always)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cc-quota-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_ping(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
