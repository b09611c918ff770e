"""The full guardrail set over many series: batch engine versus looping the scalar functions.

(a) 10,000 series x 90 daily points, every rule of the 0.3 API per series (budget, spike,
    robust MAD, robust percentile, burn rate, forecast, breaker, policy):
    - cloudcircuit 0.3.8 from PyPI, in its own venv, looping its scalar functions;
    - our scalar functions looped the same way (for information);
    - ``cloudcircuit.batch.evaluate`` over the matrix, with its default threads (one per
      core) and on one thread, interleaved so that both see the same machine.
    The data is generated once from a seed and shipped to the predecessor as raw float64
    bytes (bench/.work), so both sides judge the same numbers; the predecessor also returns its
    verdicts and the bench checks that every verdict of every row agrees. Target: >= 100x.
(b) 1,000,000 series x 90 points (float64 input, 720 MB on its own) through ``evaluate`` in a
    fresh subprocess; its peak RSS (``ru_maxrss``) is reported. Target: < 4 GB.

``--quick`` shrinks (a) to 1,000 series and (b) to 50,000. Results: bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._venv import WORK, predecessor_python, run_json
from cloudcircuit.batch._kernels import chunk_plan

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PREDECESSOR = "cloudcircuit==0.3.8"
SEED = 20261123
POINTS = 90
ELAPSED, TOTAL = 22, 30
SPEEDUP_TARGET = 100.0
MEMORY_TARGET_GB = 4.0
#: the 0.3 parameters used on both sides
PARAMS: dict[str, Any] = {
    "warning_ratio": 0.9,
    "spike_multiplier": 1.5,
    "min_baseline": 1.0,
    "z_threshold": 3.5,
    "min_mad": 0.0,
    "percentile": 0.95,
    "hot_multiplier": 1.4,
    "failure_threshold": 3,
}
RULES = ("budget", "spike", "mad", "percentile", "burn", "forecast", "breaker", "policy")


def make_data(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Deterministic daily spend: weekly seasonality, noise, cents, idle series and runaways."""
    rng = np.random.default_rng(seed)
    values = np.empty((n, POINTS))
    block = 20_000
    weekday = np.where(np.arange(POINTS) % 7 >= 5, 0.6, 1.0)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        scale = rng.lognormal(4.0, 1.5, size=(hi - lo, 1))
        noise = rng.gamma(20.0, 1.0 / 20.0, size=(hi - lo, POINTS))
        part = np.round(scale * weekday * noise, 2)
        part[rng.random(hi - lo) < 0.03] = 0.0  # idle scopes: every point zero
        runaway = rng.random(hi - lo) < 0.05
        part[runaway, -1] *= rng.uniform(1.5, 8.0, size=int(runaway.sum()))
        values[lo:hi] = part
    spend = np.round(values[:, -ELAPSED:].sum(axis=1), 2)
    limit = np.round(np.maximum(values.mean(axis=1), 1.0) * TOTAL * rng.uniform(0.7, 1.6, n), 2)
    failures = rng.choice(np.array([0, 0, 0, 0, 1, 2, 3, 5]), size=n)
    return {"values": values, "spend": spend, "limit": limit, "failures": failures}


# -- (a) the predecessor, in its own interpreter ------------------------------------------

_PREDECESSOR_SCRIPT = r"""
import json, sys, time
from array import array
import cloudcircuit as cc
job = json.load(sys.stdin)
n, t, p = job["n"], job["t"], job["params"]
flat = array("d")
with open(job["values"], "rb") as fh:
    flat.frombytes(fh.read())
rows = [flat[i * t:(i + 1) * t].tolist() for i in range(n)]
spend, limit, fails = job["spend"], job["limit"], job["failures"]
best, verdicts = float("inf"), None
for _ in range(job["repeats"]):
    v = {k: [] for k in job["rules"]}
    start = time.perf_counter()
    for i in range(n):
        row = rows[i]
        b = cc.check_budget(spend[i], limit[i], p["warning_ratio"])
        s = cc.check_anomaly_spike(row, p["spike_multiplier"], p["min_baseline"])
        m = cc.check_anomaly_robust(
            row, method="mad", z_threshold=p["z_threshold"], min_mad=p["min_mad"]
        )
        q = cc.check_anomaly_robust(row, method="percentile", percentile=p["percentile"])
        r = cc.check_burn_rate(row, p["hot_multiplier"])
        f = cc.forecast_budget_breach(spend[i], limit[i], job["elapsed"], job["total"])
        k = cc.evaluate_circuit_breaker(fails[i], p["failure_threshold"], 0)
        d = cc.evaluate_spend_policy(b, s, k)
        v["budget"].append(2 if b.is_breached else 1 if b.is_warning else 0)
        v["spike"].append(s.is_spike)
        v["mad"].append(m.is_spike)
        v["percentile"].append(q.is_spike)
        v["burn"].append(r.is_hot)
        v["forecast"].append(f.will_breach)
        v["breaker"].append(k.is_open)
        v["policy"].append(d.action)
    best = min(best, time.perf_counter() - start)
    verdicts = v
json.dump({"version": cc.__version__, "seconds": best, "verdicts": verdicts}, sys.stdout)
"""


def _our_scalar_loop(
    data: dict[str, np.ndarray], repeats: int
) -> tuple[float, dict[str, list[Any]]]:
    import cloudcircuit as cc

    p = PARAMS
    rows = data["values"].tolist()
    spend, limit, fails = data["spend"].tolist(), data["limit"].tolist(), data["failures"].tolist()
    best, verdicts = float("inf"), {}
    for _ in range(repeats):
        v: dict[str, list[Any]] = {k: [] for k in RULES}
        start = time.perf_counter()
        for i, row in enumerate(rows):
            b = cc.check_budget(spend[i], limit[i], p["warning_ratio"])
            s = cc.check_anomaly_spike(row, p["spike_multiplier"], p["min_baseline"])
            m = cc.check_anomaly_robust(
                row, method="mad", z_threshold=p["z_threshold"], min_mad=p["min_mad"]
            )
            q = cc.check_anomaly_robust(row, method="percentile", percentile=p["percentile"])
            r = cc.check_burn_rate(row, p["hot_multiplier"])
            f = cc.forecast_budget_breach(spend[i], limit[i], ELAPSED, TOTAL)
            k = cc.evaluate_circuit_breaker(fails[i], p["failure_threshold"], 0)
            d = cc.evaluate_spend_policy(b, s, k)
            v["budget"].append(2 if b.is_breached else 1 if b.is_warning else 0)
            v["spike"].append(s.is_spike)
            v["mad"].append(m.is_spike)
            v["percentile"].append(q.is_spike)
            v["burn"].append(r.is_hot)
            v["forecast"].append(f.will_breach)
            v["breaker"].append(k.is_open)
            v["policy"].append(d.action)
        best = min(best, time.perf_counter() - start)
        verdicts = v
    return best, verdicts


def _batch(data: dict[str, np.ndarray], workers: int | None = None) -> Any:
    from cloudcircuit import batch

    p = PARAMS
    params = batch.GuardrailParams(
        warning_ratio=p["warning_ratio"],
        spike_multiplier=p["spike_multiplier"],
        min_baseline=p["min_baseline"],
        z_threshold=p["z_threshold"],
        min_mad=p["min_mad"],
        percentile=p["percentile"],
        hot_multiplier=p["hot_multiplier"],
        failure_threshold=p["failure_threshold"],
    )
    return batch.evaluate(
        data["values"],
        spend=data["spend"],
        limit=data["limit"],
        periods_elapsed=ELAPSED,
        total_periods=TOTAL,
        consecutive_failures=data["failures"],
        params=params,
        workers=workers,
    )


def _batch_verdicts(res: Any) -> dict[str, list[Any]]:
    assert res.forecast is not None
    return {
        "budget": np.where(
            res.budget.is_breached, 2, np.where(res.budget.is_warning, 1, 0)
        ).tolist(),
        "spike": res.spike.is_spike.tolist(),
        "mad": res.robust_mad.is_spike.tolist(),
        "percentile": res.robust_percentile.is_spike.tolist(),
        "burn": res.burn_rate.is_hot.tolist(),
        "forecast": res.forecast.will_breach.tolist(),
        "breaker": res.breaker.is_open.tolist(),
        "policy": res.policy.action.tolist(),
    }


def _disagreements(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> dict[str, int]:
    return {k: sum(x != y for x, y in zip(a[k], b[k], strict=True)) for k in RULES}


def bench_speed(n: int, console: Console) -> dict[str, Any]:
    data = make_data(n)
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / f"batch-{n}x{POINTS}.f64"
    raw.write_bytes(np.ascontiguousarray(data["values"], dtype="<f8").tobytes())

    console.print(f"[bold]preparing {PREDECESSOR} venv[/] (cached in bench/.work)")
    python = predecessor_python(PREDECESSOR)
    job = {
        "values": str(raw),
        "n": n,
        "t": POINTS,
        "params": PARAMS,
        "spend": data["spend"].tolist(),
        "limit": data["limit"].tolist(),
        "failures": data["failures"].tolist(),
        "elapsed": ELAPSED,
        "total": TOTAL,
        "repeats": 5,
        "rules": RULES,
    }
    times: dict[int | None, list[float]] = {None: [], 1: []}

    def time_batch(repeats: int) -> Any:
        result = None
        for _ in range(repeats):
            for workers in times:  # default threads and one thread, interleaved
                start = time.perf_counter()
                result = _batch(data, workers)
                times[workers].append(time.perf_counter() - start)
        return result

    # the machine may be shared: batch runs before and after the predecessor, best of all
    with console.status(f"batch.evaluate over {n:,} series"):
        _batch(data)  # warm-up
        time_batch(20)
    with console.status(f"{PREDECESSOR}: looping its scalar functions over {n:,} series"):
        old = run_json(python, _PREDECESSOR_SCRIPT, job)
    with console.status(f"our scalar functions over {n:,} series"):
        ours_scalar, scalar_verdicts = _our_scalar_loop(data, repeats=3)
    with console.status(f"batch.evaluate over {n:,} series"):
        res = time_batch(20)
    batch_verdicts = _batch_verdicts(res)
    return {
        "series": n,
        "points": POINTS,
        "predecessor": PREDECESSOR,
        "predecessor_version": old["version"],
        "predecessor_seconds": old["seconds"],
        "our_scalar_seconds": ours_scalar,
        "batch_seconds_best": min(times[None]),
        "batch_seconds_median": float(np.median(times[None])),
        "batch_one_thread_seconds_best": min(times[1]),
        "batch_one_thread_seconds_median": float(np.median(times[1])),
        "speedup_vs_predecessor": old["seconds"] / min(times[None]),
        "speedup_vs_predecessor_median": old["seconds"] / float(np.median(times[None])),
        "speedup_one_thread_vs_predecessor": old["seconds"] / min(times[1]),
        "speedup_vs_our_scalar": ours_scalar / min(times[None]),
        "disagreements_vs_predecessor": _disagreements(batch_verdicts, old["verdicts"]),
        "disagreements_vs_our_scalar": _disagreements(batch_verdicts, scalar_verdicts),
        "target_speedup": SPEEDUP_TARGET,
        "batch_chunks": len(chunk_plan(n, POINTS)[0]),
        "batch_threads": chunk_plan(n, POINTS)[1],
        "load_average_1min": os.getloadavg()[0],
    }


# -- (b) a million series in a fresh process ----------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Sampler:
    """Samples this process's RSS every few milliseconds while ``evaluate`` runs."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _current_rss_mb())
            self._stop.wait(0.005)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_mb())


def child_memory(n: int) -> dict[str, Any]:
    """Runs inside the measured subprocess."""
    from cloudcircuit import batch

    base = _current_rss_mb()
    data = make_data(n)
    before = _current_rss_mb()
    with _Sampler() as sampler:
        start = time.perf_counter()
        res = batch.evaluate(
            data["values"],
            spend=data["spend"],
            limit=data["limit"],
            periods_elapsed=ELAPSED,
            total_periods=TOTAL,
            consecutive_failures=data["failures"],
        )
        seconds = time.perf_counter() - start
    return {
        "series": n,
        "points": POINTS,
        "input_mb": data["values"].nbytes / 2**20,
        "seconds": seconds,
        "rss_after_imports_mb": base,
        "rss_before_evaluate_mb": before,
        "rss_peak_during_evaluate_mb": sampler.peak,
        "evaluate_extra_mb": sampler.peak - before,
        "rss_peak_mb": _peak_rss_mb(),
        "blocked": int((res.policy.code == 2).sum()),
        "throttled": int((res.policy.code == 1).sum()),
    }


def bench_memory(n: int, console: Console) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_batch", "--child-memory", str(n)]
    with console.status(f"batch.evaluate over {n:,} x {POINTS} in a fresh process"):
        proc = subprocess.run(
            cmd, cwd=ROOT.parent, capture_output=True, text=True, timeout=3600, check=False
        )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"memory child failed with exit code {proc.returncode}")
    out: dict[str, Any] = json.loads(proc.stdout)
    out["children_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    out["target_gb"] = MEMORY_TARGET_GB
    return out


# -- report -------------------------------------------------------------------------------


def _report(speed: dict[str, Any], memory: dict[str, Any], console: Console) -> None:
    n = speed["series"]
    table = Table(title=f"Full guardrail set, {n:,} series x {POINTS} points")
    table.add_column("implementation")
    table.add_column("seconds", justify="right")
    table.add_column("µs / series", justify="right")
    table.add_column("vs 0.3.8", justify="right")
    rows = [
        (
            f"cloudcircuit {speed['predecessor_version']} (PyPI), scalar loop",
            speed["predecessor_seconds"],
        ),
        ("cloudcircuit scalar functions, loop", speed["our_scalar_seconds"]),
        (
            f"batch.evaluate, default ({speed['batch_threads']} thr.), best of 40",
            speed["batch_seconds_best"],
        ),
        (
            f"batch.evaluate, default ({speed['batch_threads']} thr.), median of 40",
            speed["batch_seconds_median"],
        ),
        ("batch.evaluate, 1 thread, best of 40", speed["batch_one_thread_seconds_best"]),
        ("batch.evaluate, 1 thread, median of 40", speed["batch_one_thread_seconds_median"]),
    ]
    for label, seconds in rows:
        ratio = speed["predecessor_seconds"] / seconds
        table.add_row(label, f"{seconds:.4f}", f"{seconds / n * 1e6:.2f}", f"{ratio:,.1f}x")
    console.print(table)
    ok = speed["speedup_vs_predecessor"] >= SPEEDUP_TARGET
    bad = sum(speed["disagreements_vs_predecessor"].values())
    best, median = speed["speedup_vs_predecessor"], speed["speedup_vs_predecessor_median"]
    one = speed["speedup_one_thread_vs_predecessor"]
    verdict = "[green]met[/]" if ok else "[red]NOT met[/]"
    console.print(
        f"speed-up {best:,.1f}x (median {median:,.1f}x; one thread {one:,.1f}x), "
        f"target >= {SPEEDUP_TARGET:.0f}x: "
        f"{verdict}; verdicts differing from 0.3.8: {bad} of {n * len(RULES):,}; "
        f"batch threads {speed['batch_threads']}, load average {speed['load_average_1min']:.1f} "
        f"on {os.cpu_count()} cores"
    )
    mem = Table(title=f"{memory['series']:,} series x {POINTS} points, one process")
    for col in ("input", "evaluate s", "RSS before", "evaluate adds", "process peak", "target"):
        mem.add_column(col, justify="right")
    peak_gb = max(memory["rss_peak_mb"], memory["children_maxrss_mb"]) / 1024
    mem.add_row(
        f"{memory['input_mb']:,.0f} MB float64",
        f"{memory['seconds']:.1f}",
        f"{memory['rss_before_evaluate_mb']:,.0f} MB",
        f"{memory['evaluate_extra_mb']:,.0f} MB",
        f"[{'green' if peak_gb < MEMORY_TARGET_GB else 'red'}]{peak_gb:.2f} GB[/]",
        f"< {MEMORY_TARGET_GB:.0f} GB",
    )
    console.print(mem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_batch", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        json.dump(child_memory(args.child_memory), sys.stdout)
        return 0
    console = Console()
    speed = bench_speed(1_000 if args.quick else 10_000, console)
    memory = bench_memory(50_000 if args.quick else 1_000_000, console)
    _report(speed, memory, console)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "batch.json"
    out.write_text(json.dumps({"quick": args.quick, "speed": speed, "memory": memory}, indent=2))
    console.print(f"results: {out}")
    agree = sum(speed["disagreements_vs_predecessor"].values()) == 0
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
