"""Redis Cluster: what the shared global counter costs (the hot-key trade-off, measured).

The ledger keeps one hierarchy in one hash slot (the chain's root scope is the hash tag), so a
reserve is one atomic script. With ``global > project > user`` the root is ``global``: every
request of every tenant lands on ONE slot, one master. Rooting the chain at a level with many
entities (``org > team > user``, no global level) spreads tenants over the masters, at the
price of having no atomic cross-tenant limit. This benchmark starts a 3-master cluster on
loopback ports, drives both chains with the same client processes, and reports lifecycles/s
and how the servers' CPU time was shared among the masters (the hot node's share).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def _free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class _Cluster:
    """Three loopback masters, started and stopped here."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cc-bench-cluster-"))
        self.ports = [_free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> _Cluster:
        import redis

        for i, port in enumerate(self.ports):
            node = self.dir / str(i)
            node.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node / "nodes.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        str(node),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            client = redis.Redis(port=port, socket_timeout=0.5)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    time.sleep(0.05)
            client.close()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in self.ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for _ in range(300):
            info = subprocess.run(
                ["redis-cli", "-p", str(self.ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
            ).stdout
            if "cluster_state:ok" in info:
                return self
            time.sleep(0.1)
        raise RuntimeError("the cluster did not become ready")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cpu_seconds(self) -> list[float]:
        import psutil

        times = [psutil.Process(p.pid).cpu_times() for p in self.procs]
        return [t.user + t.system for t in times]


def _levels(chain: str) -> Any:
    from cloudcircuit.quota import Hierarchy, Level

    if chain == "global":
        names = [
            Level(name="global", shared=True, limit=1e9),
            Level(name="project"),
            Level(name="user"),
        ]
    else:
        names = [Level(name="org", limit=1e9), Level(name="team"), Level(name="user")]
    return Hierarchy(levels=tuple(names))


def _worker(args: tuple[str, str, int, int]) -> int:
    from cloudcircuit.quota import Ledger

    url, chain, n, seed = args
    rng = random.Random(seed)
    ledger = Ledger(url, _levels(chain), timeout=5.0)
    for _ in range(n):
        tenant = f"t{rng.randrange(48)}"
        if chain == "global":
            scope = {"project": tenant, "user": f"u{rng.randrange(8)}"}
        else:
            scope = {"org": tenant, "team": "a", "user": f"u{rng.randrange(8)}"}
        ledger.commit(ledger.reserve(scope, 0.01), 0.01)
    ledger.close()
    return n


def _run(cluster: _Cluster, chain: str, n: int, clients: int) -> dict[str, Any]:
    url = f"redis+cluster://127.0.0.1:{cluster.ports[0]}?prefix=cc-bench-{uuid.uuid4().hex[:6]}:"
    _worker((url, chain, 50, 0))  # warm up: scripts loaded, slots known
    before = cluster.cpu_seconds()
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    with context.Pool(clients) as pool:
        done = sum(pool.map(_worker, [(url, chain, n, i + 1) for i in range(clients)]))
    wall = time.perf_counter() - start
    cpu = [after - b for after, b in zip(cluster.cpu_seconds(), before, strict=True)]
    total = sum(cpu) or 1.0
    return {
        "lifecycles_per_s": done / wall,
        "node_cpu_share": [c / total for c in cpu],
        "hot_node_share": max(cpu) / total,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_quota_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    console = Console()
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        console.print("skipped: redis-server / redis-cli are not installed")
        return 0
    n = 300 if args.quick else 3000
    clients = 4
    results: dict[str, Any] = {"lifecycles_per_client": n, "clients": clients}
    with _Cluster() as cluster, Progress(console=console, transient=True) as progress:
        for chain in ("global", "org"):
            task = progress.add_task(f"chain rooted at {chain}", total=1)
            results[chain] = _run(cluster, chain, n, clients)
            progress.update(task, completed=1)
    table = Table(title=f"3-master Redis Cluster, {clients} client processes")
    for column in ("chain", "lifecycles/s", "CPU share per master", "hot master", "vs global"):
        table.add_column(column, justify="right")
    base = results["global"]["lifecycles_per_s"]
    for chain, label in (("global", "global > project > user"), ("org", "org > team > user")):
        r = results[chain]
        shares = " / ".join(f"{s:.0%}" for s in r["node_cpu_share"])
        table.add_row(
            label,
            f"{r['lifecycles_per_s']:,.0f}",
            shares,
            f"{r['hot_node_share']:.0%}",
            f"{r['lifecycles_per_s'] / base:.2f}x",
        )
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quota_cluster.json").write_text(json.dumps(results, indent=2))
    console.print(f"written {RESULTS / 'quota_cluster.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
