"""NAB's scoring, written from its description (Lavin & Ahmad 2015; NAB's README and docs).

For one data file with labelled anomaly windows and a detector's boolean detections:

- rows in the probationary period (the first 15 % of the file, at most 750 rows) are not
  scored;
- a detection inside a window scores ``tp * sigma(pos) / sigma(-1)`` where ``pos`` runs from
  -1 at the window's first row to about 0 at its last, and ``sigma(p) = 2 / (1 + e^(5p)) - 1``
  (the scaled sigmoid; -1 when ``p > 3``): early detections earn the most. Only the first
  detection of a window counts;
- a window with no detection costs ``-fn``;
- a detection outside every window costs ``fp * sigma(d)``, ``d`` the distance past the end of
  the previous window in window widths (``-fp`` when there is no previous window, or far away);
- the corpus score is ``100 * (raw - null) / (perfect - null)``: the null detector (no
  detections, ``-fn`` per window) scores 0, the perfect one (each window's first row) 100.

Detectors emit a score per row; a threshold turns it into detections. :func:`sweep` evaluates
many thresholds at once (prefix maxima and cumulative sums), so optimising the threshold over a
corpus, as NAB does, is cheap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "CostMatrix",
    "FileScore",
    "PreparedFile",
    "load_profiles",
    "normalized",
    "prepare",
    "probationary_length",
    "scaled_sigmoid",
    "score_detections",
    "sweep",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CostMatrix:
    """One NAB profile's weights."""

    tp: float
    fn: float
    fp: float
    tn: float = 1.0


def load_profiles(path: str | Path) -> dict[str, CostMatrix]:
    """config/profiles.json -> {profile name: CostMatrix}."""
    raw = json.loads(Path(path).read_text())
    out: dict[str, CostMatrix] = {}
    for name, body in raw.items():
        cm = body["CostMatrix"]
        out[name] = CostMatrix(
            tp=float(cm["tpWeight"]),
            fn=float(cm["fnWeight"]),
            fp=float(cm["fpWeight"]),
            tn=float(cm.get("tnWeight", 1.0)),
        )
    return out


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: +0.987 at -1 (window start), 0 at 0, -1 beyond 3."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probationary_length(rows: int, percent: float = 0.15) -> int:
    """Rows not scored at the start of a file: 15 % of it, at most 15 % of 5000 (750)."""
    return int(min(math.floor(percent * rows), percent * 5000))


@dataclass(frozen=True)
class PreparedFile:
    """A file's labels turned into per-row weights, ready to score any detections.

    ``weight[i]`` is what a detection at row i earns (TP) or costs (FP); ``window[i]`` is the
    window index of row i or -1; probationary rows have ``scored[i] = False``.
    """

    rows: int
    windows: tuple[tuple[int, int], ...]
    weight: FloatArray
    window: npt.NDArray[np.int64]
    scored: npt.NDArray[np.bool_]
    cost: CostMatrix

    @property
    def null_raw(self) -> float:
        return -self.cost.fn * len(self.windows)

    @property
    def perfect_raw(self) -> float:
        return self.cost.tp * len(self.windows)


def prepare(
    rows: int, windows: Sequence[tuple[int, int]], cost: CostMatrix, *, probation: float = 0.15
) -> PreparedFile:
    """Per-row weights for a file of ``rows`` rows with inclusive row-index ``windows``."""
    ordered = sorted((int(a), int(b)) for a, b in windows)
    for k, (a, b) in enumerate(ordered):
        if not 0 <= a <= b < rows:
            raise ValueError(f"window rows ({a}, {b}) outside a file of {rows} rows")
        if k + 1 < len(ordered) and ordered[k + 1][0] <= b:
            raise ValueError(f"windows ({a}, {b}) and {ordered[k + 1]} overlap")
    weight = np.empty(rows)
    window = np.full(rows, -1, dtype=np.int64)
    max_tp = scaled_sigmoid(-1.0)
    prev_right: int | None = None
    prev_width = 0.0
    k = 0
    for i in range(rows):
        if k < len(ordered) and ordered[k][0] <= i <= ordered[k][1]:
            left, right = ordered[k]
            width = float(right - left + 1)
            position = -(right - i + 1) / width
            weight[i] = scaled_sigmoid(position) * cost.tp / max_tp
            window[i] = k
            if i == right:
                prev_right, prev_width = right, width
                k += 1
        else:
            if prev_right is None or prev_width <= 1:
                unweighted = -1.0
            else:
                unweighted = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1))
            weight[i] = unweighted * cost.fp
    scored = np.arange(rows) >= probationary_length(rows, probation)
    return PreparedFile(rows, tuple(ordered), weight, window, scored, cost)


@dataclass(frozen=True, slots=True)
class FileScore:
    raw: float
    tp: int
    fp: int
    fn: int
    detections: int


def score_detections(prepared: PreparedFile, detections: npt.ArrayLike) -> FileScore:
    """Score one file's boolean detections (the direct, row-by-row definition)."""
    det = np.asarray(detections, dtype=bool)
    if det.shape != (prepared.rows,):
        raise ValueError(f"{det.shape[0]} detections for a file of {prepared.rows} rows")
    raw = 0.0
    tp = fp = 0
    found: set[int] = set()
    for i in np.flatnonzero(det & prepared.scored):
        w = int(prepared.window[i])
        if w < 0:
            raw += float(prepared.weight[i])
            fp += 1
        elif w not in found:
            found.add(w)
            raw += float(prepared.weight[i])
            tp += 1
    fn = len(prepared.windows) - len(found)
    raw -= prepared.cost.fn * fn
    return FileScore(raw=raw, tp=tp, fp=fp, fn=fn, detections=int(det.sum()))


def sweep(prepared: PreparedFile, scores: npt.ArrayLike, thresholds: FloatArray) -> FloatArray:
    """Raw score of ``scores >= t`` for every threshold ``t`` at once (same as
    :func:`score_detections`, vectorised)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (prepared.rows,):
        raise ValueError(f"{s.shape[0]} scores for a file of {prepared.rows} rows")
    th = np.asarray(thresholds, dtype=np.float64)
    out = np.zeros(th.shape)
    outside = prepared.scored & (prepared.window < 0)
    fp_scores = s[outside]
    if fp_scores.size:
        order = np.argsort(fp_scores)
        sorted_scores = fp_scores[order]
        suffix = np.concatenate([np.cumsum(prepared.weight[outside][order][::-1])[::-1], [0.0]])
        # detections at threshold t: every row with score >= t
        out += suffix[np.searchsorted(sorted_scores, th, side="left")]
    for left, right in prepared.windows:
        rows = np.arange(left, right + 1)
        rows = rows[prepared.scored[rows]]
        if rows.size == 0:
            out -= prepared.cost.fn  # a window lost to probation is a miss
            continue
        prefix = np.maximum.accumulate(s[rows])
        first = np.searchsorted(prefix, th, side="left")
        hit = first < rows.size
        gain = np.where(hit, prepared.weight[rows[np.minimum(first, rows.size - 1)]], 0.0)
        out += np.where(hit, gain, -prepared.cost.fn)
    return out


def normalized(raw: float, null: float, perfect: float) -> float:
    """NAB's 0 (null detector) .. 100 (perfect detector) score; NaN when they coincide."""
    if perfect == null:
        return math.nan
    return 100.0 * (raw - null) / (perfect - null)
