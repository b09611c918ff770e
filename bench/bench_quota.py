"""Runtime quotas, side by side: cloudcircuit's ledger vs coreason-budget 0.4.1 vs the ceiling.

1. Redis, one client: reserve + commit lifecycles/s and reserve p50/p99 (cloudcircuit), check +
   charge (coreason-budget 0.4.1 in its own venv, its SyncBudgetGuard and SyncRedisLedger driven
   directly, logging at WARNING; as shipped, and again lent our hiredis parser), the ceiling:
   two bare EVALSHA round trips from redis-py's ``evalsha``, and the floor: the same two
   round trips through the ledger's own hand-packed transport. Ceiling and floor use the
   ledger's own RedisBackend client (same redis-py, parser, timeouts), so they differ from the
   ledger only in the work it does.
2. Overshoot under 64-way contention: 64 threads spend 1.0 each against a 10.0 user limit (a
   2 ms "call" between the check/reserve and the charge/commit).
3. SQLite: lifecycles/s, one process and 8 processes on one file.
4. HTTP: ``cloudcircuit serve`` (uvicorn, Redis ledger) under a loopback load generator of
   client processes: reserve requests/s and p50/p99.

The Redis section runs in interleaved rounds (best of 3 for each side), so that every side sees
the same machine load; ``--redis-only`` runs just that section. coreason-budget runs with
bench/.work as its working directory (its logger writes ``logs/app.log`` there). Keys:
cloudcircuit writes under a unique ``cc-bench-…:`` prefix on the local Redis (deleted
after); coreason-budget's key names are fixed (``budget:*``), so it runs on DB index 14 and
only ``budget:*`` keys there are deleted afterwards. ``--quick`` runs small sizes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench._venv import WORK, predecessor_python

RESULTS = Path(__file__).resolve().parent / "results"
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
COREASON_DB = 14
COREASON = "coreason-budget==0.4.1"
BIG = 1e9

_COREASON_SCRIPT = r"""
import json, statistics, sys, threading, time, uuid, warnings
warnings.simplefilter("ignore")
from coreason_budget.config import CoreasonBudgetConfig
from coreason_budget.exceptions import BudgetExceededError
from coreason_budget.guard import SyncBudgetGuard
from coreason_budget.ledger import SyncRedisLedger
from coreason_identity.models import UserContext

p = json.load(sys.stdin)
cfg = CoreasonBudgetConfig(redis_url=p["url"], daily_global_limit_usd=1e9,
                           daily_project_limit_usd=1e9, daily_user_limit_usd=p["user_limit"])
guard = SyncBudgetGuard(cfg, SyncRedisLedger(cfg.redis_url))
run = uuid.uuid4().hex[:8]
out = {}
if p["mode"] == "lifecycles":
    user = UserContext(user_id="bench-" + run, email="bench@example.com")
    for _ in range(200):
        guard.check(user, "p-" + run, 0.01); guard.charge(user, 0.01, "p-" + run)
    lat = []
    start = time.perf_counter()
    for _ in range(p["n"]):
        t = time.perf_counter()
        guard.check(user, "p-" + run, 0.01)
        lat.append(time.perf_counter() - t)
        guard.charge(user, 0.01, "p-" + run)
    total = time.perf_counter() - start
    lat.sort()
    out = {"per_s": p["n"] / total, "p50_ms": lat[len(lat) // 2] * 1e3,
           "p99_ms": lat[int(len(lat) * 0.99)] * 1e3}
else:
    user = UserContext(user_id="race-" + run, email="bench@example.com")
    spent = []
    lock = threading.Lock()
    barrier = threading.Barrier(p["threads"])
    def worker():
        barrier.wait()
        for _ in range(p["attempts"]):
            try:
                guard.check(user, "p-" + run, 1.0)
            except BudgetExceededError:
                return
            time.sleep(p["call_s"])
            guard.charge(user, 1.0, "p-" + run)
            with lock:
                spent.append(1.0)
    threads = [threading.Thread(target=worker) for _ in range(p["threads"])]
    for t in threads: t.start()
    for t in threads: t.join()
    used = float(guard.ledger.get_usage(guard._get_keys(user.user_id, "p-" + run)["user"]))
    out = {"committed": used, "limit": p["user_limit"]}
print(json.dumps(out))
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _hierarchy(user_limit: float = BIG) -> Any:
    from cloudcircuit.quota import Hierarchy, Level

    return Hierarchy(
        levels=(
            Level(name="global", shared=True, limit=BIG),
            Level(name="project", limit=BIG),
            Level(name="user", limit=user_limit),
        )
    )


def _with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def _delete_prefix(url: str, pattern: str, db: int | None = None) -> None:
    import redis

    client = redis.Redis.from_url(url, db=db) if db is not None else redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


def redis_lifecycles(url: str, n: int) -> dict[str, float]:
    """cloudcircuit reserve + commit on Redis, one client."""
    from cloudcircuit.quota import Ledger

    ledger = Ledger(url, _hierarchy())
    scope = {"project": "p1", "user": "u1"}
    for _ in range(200):
        ledger.commit(ledger.reserve(scope, 0.01), 0.01)
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        held = ledger.reserve(scope, 0.01)
        latencies.append(time.perf_counter() - t)
        ledger.commit(held, 0.01)
    total = time.perf_counter() - start
    ledger.close()
    return {
        "per_s": n / total,
        "p50_ms": _pct(latencies, 0.5) * 1e3,
        "p99_ms": _pct(latencies, 0.99) * 1e3,
    }


def _client_setup() -> str:
    """What the Redis sides of this process share: redis-py's version and reply parser."""
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    return f"redis-py {redis.__version__}, {'hiredis' if HIREDIS_AVAILABLE else 'Python'} parser"


def evalsha_ceiling(url: str, n: int, prefix: str, *, raw: bool = False) -> dict[str, float]:
    """Two bare EVALSHA round trips per lifecycle (a script that only returns 1).

    The client is the ledger's own (``RedisBackend``: same redis-py, parser, decoding,
    timeouts and retry setting), so the only difference to the ledger is the work done.
    ``raw=False`` calls redis-py's ``evalsha`` (the issue's ceiling); ``raw=True`` sends
    hand-packed RESP on the backend's own connection, exactly as the ledger does (a stricter
    floor: what a lifecycle would cost if the scripts and the ledger's Python were free).
    """
    from cloudcircuit.quota.backends.redis import RedisBackend

    backend = RedisBackend(url)
    client = backend.client
    sha = client.script_load("return 1")
    key = prefix + "ceiling"
    if raw:
        payload = b"*4\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n$%d\r\n%s\r\n" % (
            sha.encode(),
            len(key.encode()),
            key.encode(),
        )

        def call() -> Any:
            return backend._call(payload)
    else:

        def call() -> Any:
            return client.evalsha(sha, 1, key)

    for _ in range(200):
        call()
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
        call()
    total = time.perf_counter() - start
    backend.close()
    return {
        "per_s": n / total,
        "p50_ms": _pct(latencies, 0.5) * 1e3,
        "p99_ms": _pct(latencies, 0.99) * 1e3,
    }


def _coreason_url() -> str:
    base = REDIS.rsplit("/", 1)[0] if REDIS.count("/") >= 3 else REDIS
    return f"{base}/{COREASON_DB}"


def _hiredis_path() -> Path:
    """A folder holding only this venv's hiredis, for the coreason + hiredis row."""
    import hiredis

    folder = WORK / "hiredis-path"
    link = folder / "hiredis"
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(hiredis.__file__).resolve().parent)
    return folder


def coreason(payload: dict[str, Any], *, hiredis: bool = False) -> dict[str, Any]:
    """Run coreason-budget 0.4.1 in its own venv, in bench/.work (its logger writes
    ``logs/app.log`` into the current directory). ``hiredis``: lend it our hiredis parser
    (same redis-py reply parser as cloudcircuit) instead of its shipped Python parser."""
    python = predecessor_python(COREASON)
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "COREASON_BUDGET_LOG_PATH": str(WORK / "logs" / "app.log"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("PYTHONPATH", None)
    if hiredis:
        env["PYTHONPATH"] = str(_hiredis_path())
    script = _COREASON_SCRIPT.replace(
        "print(json.dumps(out))",
        "from redis.utils import HIREDIS_AVAILABLE\nimport redis\n"
        "out['client'] = f\"redis-py {redis.__version__}, \" + "
        "('hiredis' if HIREDIS_AVAILABLE else 'Python') + ' parser'\n"
        "print(json.dumps(out))",
    )
    proc = subprocess.run(
        [str(python), "-c", script],
        input=json.dumps({"url": _coreason_url(), **payload}),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=WORK,
        env=env,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"coreason-budget script failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def overshoot_ours(url: str, threads: int, attempts: int, call_s: float) -> dict[str, float]:
    from cloudcircuit.quota import Ledger

    ledger = Ledger(url, _hierarchy(user_limit=10.0), timeout=5.0)
    scope = {"project": "race", "user": uuid.uuid4().hex[:8]}
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait()
        for _ in range(attempts):
            held = ledger.reserve(scope, 1.0)
            if not held.allowed:
                return
            time.sleep(call_s)
            ledger.commit(held, 1.0)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    committed = ledger.usage(scope)[-1].committed
    ledger.close()
    return {"committed": committed, "limit": 10.0}


def _sqlite_worker(args: tuple[str, int]) -> tuple[int, float]:
    from cloudcircuit.quota import Ledger

    url, n = args
    ledger = Ledger(url, _hierarchy(), timeout=30.0)
    scope = {"project": "p1", "user": f"u{os.getpid() % 8}"}
    start = time.perf_counter()
    for _ in range(n):
        ledger.commit(ledger.reserve(scope, 0.01), 0.01)
    elapsed = time.perf_counter() - start
    ledger.close()
    return n, elapsed


def sqlite_lifecycles(n: int, processes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cc-bench-sqlite-") as tmp:
        url = f"sqlite:///{tmp}/quota.db"
        if processes == 1:
            done, elapsed = _sqlite_worker((url, n))
            return {"per_s": done / elapsed}
        context = multiprocessing.get_context("fork")
        start = time.perf_counter()
        with context.Pool(processes) as pool:
            parts = pool.map(_sqlite_worker, [(url, n)] * processes)
        wall = time.perf_counter() - start
        return {"per_s": sum(p[0] for p in parts) / wall}


def _http_client(args: tuple[str, int, str]) -> list[float]:
    import httpx

    base, n, token = args
    body = {"scope": {"project": "p1", "user": f"u{os.getpid() % 8}"}, "estimate": 0.01}
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for _ in range(20):
            client.post("/v1/reserve", json=body)
        for _ in range(n):
            t = time.perf_counter()
            answer = client.post("/v1/reserve", json=body)
            latencies.append(time.perf_counter() - t)
            if answer.status_code != 200:
                raise RuntimeError(f"reserve answered {answer.status_code}: {answer.text}")
    return latencies


def http_reserve(url: str, n: int, clients: int, workers: int = 1) -> dict[str, float]:
    import httpx
    import yaml

    from cloudcircuit.quota import hash_api_key

    token = "bench-" + uuid.uuid4().hex
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="cc-bench-http-") as tmp:
        config = Path(tmp) / "quota.yaml"
        hierarchy = {
            "levels": [
                {"name": "global", "shared": True},
                {"name": "project"},
                {"name": "user"},
            ]
        }
        keys = [{"name": "bench", "sha256": hash_api_key(token), "admin": True}]
        config.write_text(yaml.safe_dump({"ledger": url, "hierarchy": hierarchy, "keys": keys}))
        command = [sys.executable, "-m", "cloudcircuit", "serve", "--config", str(config)]
        server = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("cloudcircuit serve did not start") from None
                    time.sleep(0.1)
            context = multiprocessing.get_context("fork")
            start = time.perf_counter()
            with context.Pool(clients) as pool:
                parts = pool.map(_http_client, [(base, n, token)] * clients)
            wall = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=15)
    latencies = [x for part in parts for x in part]
    return {
        "per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": _pct(latencies, 0.99) * 1e3,
        "clients": clients,
        "workers": workers,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _step(progress: Progress, label: str, func: Callable[[], Any]) -> Any:
    task = progress.add_task(label, total=1)
    try:
        return func()
    except Exception as exc:  # a failed section is reported, the others still run
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        progress.update(task, completed=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_quota", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--redis-only", action="store_true", help="only the one-client Redis lifecycle section"
    )
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else 20_000
    n_sqlite = 500 if args.quick else 5_000
    n_http = 300 if args.quick else 3_000
    console = Console()
    prefix = f"cc-bench-{uuid.uuid4().hex[:8]}:"
    url = _with_prefix(REDIS, prefix)
    results: dict[str, Any] = {
        "sizes": {"lifecycles": n, "sqlite": n_sqlite, "http": n_http},
        "client": _client_setup(),
    }
    try:
        with Progress(console=console, transient=True) as progress:
            # interleaved rounds, best of each: every side sees the same machine load
            rounds = 1 if args.quick else 3
            for i in range(rounds):
                size = n // rounds
                for key, label, func in (
                    ("cloudcircuit_redis", "cloudcircuit reserve+commit (Redis)",
                     lambda size=size: redis_lifecycles(url, size)),
                    ("ceiling", "2 x bare EVALSHA ceiling (redis-py evalsha)",
                     lambda size=size: evalsha_ceiling(REDIS, size, prefix)),
                    ("floor", "2 x bare EVALSHA floor (the ledger's own transport)",
                     lambda size=size: evalsha_ceiling(REDIS, size, prefix, raw=True)),
                    ("coreason", "coreason-budget 0.4.1 check+charge",
                     lambda size=size: coreason(
                         {"mode": "lifecycles", "n": size, "user_limit": BIG}
                     )),
                    ("coreason_hiredis", "coreason-budget 0.4.1 check+charge, hiredis",
                     lambda size=size: coreason(
                         {"mode": "lifecycles", "n": size, "user_limit": BIG}, hiredis=True
                     )),
                ):  # fmt: skip
                    got = _step(progress, f"{label}, round {i + 1}/{rounds}", func)
                    best = results.get(key)
                    if best is None or ("per_s" in got and got["per_s"] > best.get("per_s", 0)):
                        results[key] = got
            if not args.redis_only:
                race = {"threads": 64, "attempts": 3, "call_s": 0.002}
                results["overshoot_cloudcircuit"] = _step(
                    progress, "overshoot, cloudcircuit", lambda: overshoot_ours(url, **race)
                )
                results["overshoot_coreason"] = _step(
                    progress,
                    "overshoot, coreason-budget",
                    lambda: coreason({"mode": "race", "user_limit": 10.0, **race}),
                )
                results["sqlite_1"] = _step(
                    progress, "SQLite, 1 process", lambda: sqlite_lifecycles(n_sqlite, 1)
                )
                results["sqlite_8"] = _step(
                    progress, "SQLite, 8 processes", lambda: sqlite_lifecycles(n_sqlite, 8)
                )
                for workers in (1, 2):
                    results[f"http_{workers}"] = _step(
                        progress,
                        f"HTTP reserve (uvicorn, {workers} worker(s), 4 clients)",
                        lambda workers=workers: http_reserve(url, n_http, 4, workers),
                    )
    finally:
        _delete_prefix(REDIS, prefix + "*")
        _delete_prefix(_coreason_url(), "budget:*")
    return _finish(console, results)


def _finish(console: Console, results: dict[str, Any]) -> int:
    _report(console, results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quota.json" if "sqlite_1" in results else "quota-redis.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2))
    console.print(f"written {RESULTS / name}")
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


def _num(section: Any, key: str, fmt: str = "{:,.0f}") -> str:
    if not isinstance(section, dict) or key not in section:
        return str(section.get("error", "n/a")) if isinstance(section, dict) else "n/a"
    return fmt.format(section[key])


def _report(console: Console, r: dict[str, Any]) -> None:
    ours, ceiling, old = r["cloudcircuit_redis"], r["ceiling"], r["coreason"]
    table = Table(title="Redis, one client: lifecycles per second")
    for column in ("", "lifecycles/s", "1st call p50 ms", "1st call p99 ms", "cc vs it"):
        table.add_column(column, justify="right")

    def ratio(other: Any) -> str:
        if "per_s" in ours and isinstance(other, dict) and "per_s" in other:
            return f"{ours['per_s'] / other['per_s']:.2f}x"
        return "n/a"

    table.add_row(
        "cloudcircuit reserve+commit",
        _num(ours, "per_s"),
        _num(ours, "p50_ms", "{:.3f}"),
        _num(ours, "p99_ms", "{:.3f}"),
        "1.00x",
    )
    rows = (
        ("coreason 0.4.1 check+charge", old),
        ("coreason 0.4.1, + hiredis", r.get("coreason_hiredis", {})),
        ("ceiling: 2 x redis-py evalsha", ceiling),
        ("floor: 2 x EVALSHA, own transport", r.get("floor", {})),
    )
    for name, section in rows:
        table.add_row(
            name,
            _num(section, "per_s"),
            _num(section, "p50_ms", "{:.3f}"),
            _num(section, "p99_ms", "{:.3f}"),
            ratio(section),
        )
    console.print(table)
    shipped = old.get("client", "n/a") if isinstance(old, dict) else "n/a"
    console.print(
        f"cloudcircuit, ceiling and floor share one client setup ({r.get('client')}): the "
        "ceiling and floor use the ledger's own RedisBackend client, so they differ from the "
        f"ledger only in the work done. coreason-budget as shipped: {shipped}."
    )

    if "sqlite_1" not in r:
        _targets(console, r)
        return
    race = Table(title="64 threads, 1.0 each, against a 10.0 user limit")
    for column in ("", "committed", "limit", "overshoot"):
        race.add_column(column, justify="right")
    for name, key in (
        ("cloudcircuit", "overshoot_cloudcircuit"),
        ("coreason-budget", "overshoot_coreason"),
    ):
        section = r[key]
        if "committed" in section:
            over = max(0.0, section["committed"] - section["limit"]) / section["limit"]
            race.add_row(
                name, f"{section['committed']:.2f}", f"{section['limit']:.2f}", f"{over:.0%}"
            )
        else:
            race.add_row(name, _num(section, "committed"), "", "")
    console.print(race)

    other = Table(title="SQLite and HTTP")
    for column in ("", "per second", "p50 ms", "p99 ms"):
        other.add_column(column, justify="right")
    other.add_row("SQLite lifecycles, 1 process", _num(r["sqlite_1"], "per_s"), "", "")
    other.add_row("SQLite lifecycles, 8 processes", _num(r["sqlite_8"], "per_s"), "", "")
    for workers in (1, 2):
        section = r[f"http_{workers}"]
        other.add_row(
            f"HTTP reserve, {workers} uvicorn worker(s), 4 clients",
            _num(section, "per_s"),
            _num(section, "p50_ms", "{:.2f}"),
            _num(section, "p99_ms", "{:.2f}"),
        )
    console.print(other)
    _targets(console, r)


def _targets(console: Console, r: dict[str, Any]) -> None:
    ours, ceiling, old = r["cloudcircuit_redis"], r["ceiling"], r["coreason"]
    targets = Table(title="Targets")
    for column in ("target", "measured", "met"):
        targets.add_column(column)

    def target(name: str, value: float | None, ok: bool | None, fmt: str) -> None:
        shown = "n/a" if value is None else fmt.format(value)
        targets.add_row(name, shown, "n/a" if ok is None else ("yes" if ok else "NO"))

    vs_old = ours["per_s"] / old["per_s"] if "per_s" in ours and "per_s" in old else None
    vs_ceiling = (
        ours["per_s"] / ceiling["per_s"] if "per_s" in ours and "per_s" in ceiling else None
    )
    floor, old_hiredis = r.get("floor", {}), r.get("coreason_hiredis", {})
    vs_floor = ours["per_s"] / floor["per_s"] if "per_s" in ours and "per_s" in floor else None
    vs_old_hiredis = (
        ours["per_s"] / old_hiredis["per_s"] if "per_s" in ours and "per_s" in old_hiredis else None
    )
    p99 = ours.get("p99_ms")
    sqlite = r.get("sqlite_1", {}).get("per_s")
    target(">= 3x coreason-budget", vs_old, None if vs_old is None else vs_old >= 3, "{:.2f}x")
    target(
        ">= 75% of the ceiling",
        vs_ceiling,
        None if vs_ceiling is None else vs_ceiling >= 0.75,
        "{:.0%}",
    )
    target("(info) vs coreason-budget + hiredis", vs_old_hiredis, None, "{:.2f}x")
    target("(info) of the ledger-transport floor", vs_floor, None, "{:.0%}")
    target("reserve p99 < 1 ms", p99, None if p99 is None else p99 < 1.0, "{:.3f} ms")
    target("SQLite >= 2,000/s", sqlite, None if sqlite is None else sqlite >= 2000, "{:,.0f}/s")
    console.print(targets)


if __name__ == "__main__":
    sys.exit(main())
