"""Run detectors over the NAB corpus, optimise each one's threshold, score per folder.

As in NAB, one threshold per detector and profile is chosen to maximise the normalised score
over the whole corpus run (every folder at once); per-folder scores then use that threshold.
artificialNoAnomaly has no windows (its null and perfect scores coincide), so it contributes
false positives to the corpus score and is reported as detections per file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.nab.data import NabFile
from bench.nab.detectors import Detector
from bench.nab.scoring import CostMatrix, PreparedFile, normalized, prepare, sweep

__all__ = ["DetectorResult", "evaluate", "threshold_grid"]

FloatArray = npt.NDArray[np.float64]


def threshold_grid(scores: Iterable[FloatArray], size: int = 400) -> FloatArray:
    """Candidate thresholds: quantiles of every score seen plus a fixed grid over (0, 1]."""
    pooled = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores])
    positive = pooled[pooled > 0]
    qs = np.quantile(positive, np.linspace(0.0, 1.0, size)) if positive.size else np.array([1.0])
    grid = np.concatenate([qs, np.linspace(0.01, 1.0, 100), [np.nextafter(1.0, 2.0)]])
    return np.unique(grid[grid > 0])


@dataclass
class DetectorResult:
    name: str
    family: str
    threshold: float
    corpus_score: float
    folder_scores: dict[str, float] = field(default_factory=dict)
    detections_per_file: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def max_detections(self, folder: str) -> int:
        counts = [n for name, n in self.detections_per_file.items() if name.startswith(folder)]
        return max(counts, default=0)


def evaluate(
    name: str,
    family: str,
    detector: Detector,
    files: Sequence[NabFile],
    cost: CostMatrix,
    *,
    progress: Callable[[str], None] | None = None,
) -> DetectorResult:
    """Score ``detector`` on ``files`` with the threshold that maximises the corpus score."""
    import time

    started = time.perf_counter()
    prepared: list[PreparedFile] = [prepare(len(f), f.windows, cost) for f in files]
    scores: list[FloatArray] = []
    for f in files:
        s = np.asarray(detector(f), dtype=np.float64)
        if s.shape != (len(f),) or not np.all(np.isfinite(s)):
            raise ValueError(f"{name} on {f.name}: scores must be {len(f)} finite numbers")
        scores.append(s)
        if progress is not None:
            progress(f.name)
    grid = threshold_grid(scores)
    raws = np.array([sweep(p, s, grid) for p, s in zip(prepared, scores, strict=True)])
    nulls = np.array([p.null_raw for p in prepared])
    perfects = np.array([p.perfect_raw for p in prepared])
    totals = 100.0 * (raws.sum(axis=0) - nulls.sum()) / (perfects.sum() - nulls.sum())
    best = int(np.argmax(totals))
    threshold = float(grid[best])
    result = DetectorResult(name, family, threshold, float(totals[best]))
    folders = sorted({f.folder for f in files})
    for folder in folders:
        idx = [i for i, f in enumerate(files) if f.folder == folder]
        raw = float(raws[idx, best].sum())
        score = normalized(raw, float(nulls[idx].sum()), float(perfects[idx].sum()))
        result.folder_scores[folder] = raw if math.isnan(score) else score
    for f, s in zip(files, scores, strict=True):
        result.detections_per_file[f.name] = int((s >= threshold).sum())
    result.seconds = time.perf_counter() - started
    return result
