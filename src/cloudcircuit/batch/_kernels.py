"""Chunked, exact kernels: validation, sums in ``sum()`` order, order statistics, MAD selection."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from cloudcircuit.batch.results import BoolArray, FloatArray, IntArray
from cloudcircuit.errors import InputError

#: CPython 3.12+ sums floats with Neumaier compensation; 3.11 adds left to right
_COMPENSATED_SUM: bool = sum([1e100, 1.0, -1e100]) == 1.0
#: rows per chunk aim at about this many float64 cells (~8 MB): cache-friendly, memory-lean
CHUNK_CELLS = 1 << 19
MIN_CHUNK_ROWS = 64
#: threads for the chunk loop (numpy releases the GIL in the heavy parts)
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


# -- validation ---------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _constant(value: float, n: int) -> FloatArray:
    """A read-only (n,) view of one float (stride 0): a scalar parameter costs no memory."""
    out: FloatArray = np.ndarray((n,), np.float64, np.array([value]), 0, (0,))
    out.flags.writeable = False
    return out


def param(name: str, value: Any, n: int) -> FloatArray:
    """A scalar or (n,) parameter as a float64 (n,) array (a stride-0 view for scalars)."""
    if type(value) is float:  # the common case, ~10x cheaper
        if not math.isfinite(value):
            raise InputError(f"{name} = {value!r}: must be finite")
        return _constant(value, n)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise InputError(f"{name} must be a number or a 1-D numeric array, got {value!r}")
    if arr.ndim == 1 and arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} entries, expected {n} (one per row)")
    f = arr.astype(np.float64, copy=False)
    if not np.isfinite(f).all():
        raise_first(name, arr, ~np.isfinite(f), "must be finite")
    return f if f.ndim else _constant(float(f), n)


def raise_first(name: str, arr: npt.NDArray[Any], bad: npt.NDArray[np.bool_], rule: str) -> None:
    if arr.ndim == 0:
        raise InputError(f"{name} = {_fmt(arr[()])}: {rule}")
    i = int(np.argmax(bad))
    raise InputError(f"{name}[{i}] = {_fmt(arr[i])}: {rule}")


def require(name: str, arr: FloatArray, ok: BoolArray, rule: str, scalar: bool) -> None:
    if not ok.all():
        bad = ~ok
        if scalar:
            raise InputError(f"{name} = {_fmt(arr[0])}: {rule}")
        raise_first(name, arr, bad, rule)


def is_scalar(value: Any) -> bool:
    return type(value) is float or type(value) is int or np.ndim(value) == 0


def matrix(values: npt.ArrayLike) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"values must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"values must be 2-D (series x points), got shape {arr.shape}")
    return arr


def lengths_of(lengths: npt.ArrayLike | None, n: int, t: int) -> IntArray:
    if lengths is None:
        if t < 2 and n:
            raise InputError(f"spend_series must contain at least 2 points (values has {t})")
        return np.full(n, t, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu" or arr.shape != (n,):
        raise InputError(f"lengths must be {n} integers (one per row), got {arr.dtype} {arr.shape}")
    out = arr.astype(np.int64)
    short = out < 2
    if short.any():
        i = int(np.argmax(short))
        raise InputError(
            f"lengths[{i}] = {out[i]}: row {i} spend_series must contain at least 2 points"
        )
    long = out > t
    if long.any():
        i = int(np.argmax(long))
        raise InputError(f"lengths[{i}] = {out[i]}: values has only {t} columns")
    return out


def _all_valid(hist: FloatArray, latest: FloatArray) -> bool:
    """Fast path: min/max of the (zero-padded) history and latest points; NaN fails both."""
    if hist.size and not (hist.min() >= 0 and hist.max() < np.inf):
        return False
    return bool(latest.min(initial=0.0) >= 0 and latest.max(initial=0.0) < np.inf)


def _raise_bad_cell(chunk: npt.NDArray[Any], lens: IntArray, offset: int) -> None:
    """Name the first invalid point (row-major) of a chunk that failed :func:`_all_valid`."""
    x = chunk.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = (x >= 0) & (x < np.inf)
    ok |= np.arange(x.shape[1]) >= lens[:, None]
    r, c = np.unravel_index(int(np.argmax(~ok)), ok.shape)
    v = float(x[r, c])
    rule = "spend must be >= 0" if math.isfinite(v) else "spend must be finite"
    raise InputError(f"values[{offset + int(r)}, {int(c)}] = {v!r}: {rule}")


# -- kernels ------------------------------------------------------------------------------


def row_sums(h: FloatArray) -> FloatArray:
    """Row sums of ``h`` added exactly as this interpreter's ``sum()`` adds a list of floats."""
    acc = np.zeros(h.shape[0])
    if not _COMPENSATED_SUM:
        with np.errstate(over="ignore"):
            for j in range(h.shape[1]):
                acc += h[:, j]
        return acc
    # CPython: t = f + x; c += (f - t) + x if |f| >= |x| else (x - t) + f. Spend is >= 0
    # (validated), so the bigger magnitude is the maximum: c += (max - t) + min, same terms.
    comp = np.zeros(h.shape[0])
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(h.shape[1]):
            x = h[:, j]
            t = acc + x
            comp += (np.maximum(acc, x) - t) + np.minimum(acc, x)
            acc = t
        return np.where((comp != 0) & np.isfinite(comp), acc + comp, acc)


def _gather(s: FloatArray, idx: IntArray) -> FloatArray:
    """``s[r, idx[r]]`` for every row of a C-contiguous ``s`` (a column when idx is uniform)."""
    if idx.size and (idx == idx[0]).all():
        return s[:, int(idx[0])]
    return cast(FloatArray, s.ravel()[np.arange(s.shape[0]) * s.shape[1] + idx])


def _median_sorted(s: FloatArray, n: IntArray) -> FloatArray:
    lo, hi = (n - 1) // 2, n // 2
    b = _gather(s, hi)
    if (lo == hi).all():
        return b
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(lo == hi, b, (_gather(s, lo) + b) / 2.0)


def _kth_deviation(
    s: FloatArray, n: IntArray, m: FloatArray, split: IntArray, k: IntArray
) -> FloatArray:
    """k-th smallest (0-based) of ``|s[:n] - m|`` per row of a C-contiguous sorted ``s``.

    ``s[:split] <= m <= s[split:n]``, so left of ``split`` the deviations grow as the index
    falls (run A) and from ``split`` on they grow with it (run B): binary-search how many of
    the k+1 smallest deviations come from A (k-th smallest of two sorted arrays).
    Flat indices stay within ``[row start - 1, row start + n - 1]``, so no clipping is needed.
    """
    flat = s.ravel()
    left = np.arange(s.shape[0]) * s.shape[1] + split - 1  # flat index of A[0]
    right = left + 1 + k  # flat index of B[k]: B[k - i] sits at right - i
    lo = np.maximum(0, k + 1 - (n - split))
    hi = np.minimum(k + 1, split)

    def more_from_a(i: IntArray) -> BoolArray:
        """True while the (i+1)-th pick must come from A: B[k - i] > A[i]."""
        return cast(BoolArray, ~(np.abs(flat[right - i] - m) <= np.abs(flat[left - i] - m)))

    with np.errstate(invalid="ignore"):
        span = hi - lo
        if span.size and (span == span[0]).all():
            # every row searches a range of the same length: branchless lower bound
            width = int(span[0])
            base = lo
            while width > 1:
                half = width // 2
                base = np.where(more_from_a(base + half), base + half, base)
                width -= half
            if int(span[0]) > 0:
                lo = base + more_from_a(base)
        else:
            for _ in range(int(n.max(initial=1)).bit_length() + 1):
                active = lo < hi
                if not active.any():
                    break
                mid = (lo + hi) >> 1
                go_right = more_from_a(mid)
                hi = np.where(go_right, hi, mid)
                lo = np.where(go_right & active, mid + 1, lo)
        from_a = np.where(lo > 0, np.abs(flat[left + 1 - lo] - m), -np.inf)
        from_b = np.where(lo <= k, np.abs(flat[right - lo] - m), -np.inf)
    return cast(FloatArray, np.maximum(from_a, from_b))


def _sort_width(w: int) -> int:
    """Row width to sort ``w`` history points at (extra cells hold +inf and sort last).

    Measured with numpy 2.x's SIMD sort on AVX2: rows of 80 to 95 doubles sort about 20 %
    faster padded to 96 (a 90-day window has 89 history points); other widths gain nothing.
    """
    return 96 if 80 <= w < 96 else w


@dataclass(slots=True)
class Chunk:
    """One chunk's shared statistics: latest point, history mean, sorted history."""

    latest: FloatArray
    n: IntArray
    mean: FloatArray | None = None
    ordered: FloatArray | None = None
    raw: FloatArray | None = None


def _prepare(
    values: npt.NDArray[Any], lens: IntArray, lo: int, hi: int, mean: bool, ordered: bool, raw: bool
) -> Chunk:
    """Rows ``lo:hi`` widened to float64: latest point, exact mean, sorted history."""
    ln = lens[lo:hi]
    width = int(ln.max())
    uniform = bool((ln == width).all())
    nh = ln - 1
    latest = values[np.arange(lo, hi), nh].astype(np.float64)
    w = width - 1
    buf = np.empty((hi - lo, _sort_width(w) if ordered else w))
    hist = buf[:, :w]
    hist[...] = values[lo:hi, :w]
    pad = None if uniform else np.arange(w) >= nh[:, None]
    if pad is not None:
        np.putmask(hist, pad, 0.0)
    if not ordered and not _all_valid(hist, latest):
        _raise_bad_cell(values[lo:hi, :width], ln, lo)
    chunk = Chunk(latest=latest, n=nh)
    if mean:
        chunk.mean = row_sums(hist) / nh.astype(np.float64)
    if ordered:
        if pad is not None:
            np.putmask(hist, pad, np.inf)
        hist = buf
        hist[:, w:] = np.inf
        hist.sort(axis=1)
        # sorted rows give min and max for free; NaN sorts last (past any inf padding)
        if not (
            (hist[:, 0] >= 0).all()
            and (_gather(hist, nh - 1) < np.inf).all()
            and _all_valid(hist[:0], latest)
        ):
            _raise_bad_cell(values[lo:hi, :width], ln, lo)
        chunk.ordered = hist
    if raw:  # detectors see the chunk with zeros after each row's prefix
        x = np.array(values[lo:hi, :width], dtype=np.float64)
        if pad is not None:
            x[np.arange(width) >= ln[:, None]] = 0.0
        chunk.raw = x
    return chunk


def chunk_plan(
    n_rows: int, t: int, workers: int | None = None
) -> tuple[list[tuple[int, int]], int]:
    """Row ranges of equal chunks (~CHUNK_CELLS cells each) and the threads to run them on
    (``workers``, default one per core up to 4, never more than there are chunks)."""
    step = max(MIN_CHUNK_ROWS, CHUNK_CELLS // max(t, 1))
    step = max(1, -(-n_rows // max(1, -(-n_rows // step))))  # equal chunks balance the threads
    bounds = [(lo, min(n_rows, lo + step)) for lo in range(0, n_rows, step)]
    threads = workers or DEFAULT_WORKERS
    return bounds, max(1, min(threads, len(bounds)))


def run_chunks(
    values: npt.NDArray[Any],
    lens: IntArray,
    work: Callable[[slice, Chunk], None],
    *,
    mean: bool,
    ordered: bool,
    raw: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Prepare each chunk of rows and hand it to ``work(rows, chunk)``, on ``workers`` threads.

    numpy releases the GIL in the heavy steps (copy, sort, ufunc loops), so idle cores share
    the work: the calling thread and ``workers - 1`` pool threads take chunks in row order
    until none is left. When chunks fail, the first one in row order is the error raised (every
    chunk before it was taken earlier and has finished). ``progress`` gets rows done so far.
    """
    bounds, threads = chunk_plan(values.shape[0], values.shape[1], workers)

    def one(i: int) -> None:
        lo, hi = bounds[i]
        work(slice(lo, hi), _prepare(values, lens, lo, hi, mean, ordered, raw))

    if threads <= 1 or threading.current_thread().name.startswith(_THREAD_PREFIX):
        done = 0  # (a nested call runs inline: waiting on the shared pool could deadlock)
        for i, (lo, hi) in enumerate(bounds):
            one(i)
            done += hi - lo
            if progress:
                progress(done)
        return

    lock = threading.Lock()
    state = {"next": 0, "rows": 0}
    errors: dict[int, BaseException] = {}

    def drain(report: bool) -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= len(bounds) or errors:
                    return
                state["next"] = i + 1
            try:
                one(i)
            except BaseException as exc:  # re-raised below, first chunk in row order wins
                with lock:
                    errors[i] = exc
                return
            with lock:
                state["rows"] += bounds[i][1] - bounds[i][0]
                rows = state["rows"]
            if report and progress:
                progress(rows)

    helpers = [_pool(threads - 1).submit(drain, False) for _ in range(threads - 1)]
    try:
        drain(True)
    finally:
        wait(helpers)
    if errors:
        raise errors[min(errors)]
    for helper in helpers:
        helper.result()  # surfaces anything that escaped drain() itself
    if progress:
        progress(state["rows"])


_THREAD_PREFIX = "cloudcircuit-batch"
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool per size: starting threads on every call would cost ~0.2 ms."""
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=_THREAD_PREFIX)
            _POOLS[threads] = pool
        return pool


def mad_location(c: Chunk, min_mad: FloatArray) -> tuple[FloatArray, FloatArray]:
    assert c.ordered is not None
    s, n = c.ordered, c.n
    loc = _median_sorted(s, n)
    # s[: n // 2] <= loc <= s[n // 2 :] for odd and even n alike
    split = n // 2
    k_hi, k_lo = n // 2, (n - 1) // 2
    d_hi = _kth_deviation(s, n, loc, split, k_hi)
    if (k_lo == k_hi).all():
        mad = d_hi
    else:
        d_lo = _kth_deviation(s, n, loc, split, k_lo)
        with np.errstate(over="ignore", invalid="ignore"):
            mad = np.where(k_lo == k_hi, d_hi, (d_lo + d_hi) / 2.0)
    return loc, np.maximum(mad, min_mad)


def quantile_sorted(s: FloatArray, n: IntArray, p: FloatArray) -> FloatArray:
    rank = p * (n - 1).astype(np.float64)
    lo_f, hi_f = np.floor(rank), np.ceil(rank)
    lo, hi = lo_f.astype(np.int64), hi_f.astype(np.int64)
    a, b = _gather(s, lo), _gather(s, hi)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(lo == hi, a, a + (rank - lo_f) * (b - a))
