"""NAB scoring (bench/nab) reproduces hand-computed and published scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.nab.data import FOLDERS, load_corpus
from bench.nab.runner import evaluate
from bench.nab.scoring import (
    CostMatrix,
    load_profiles,
    normalized,
    prepare,
    probationary_length,
    scaled_sigmoid,
    score_detections,
    sweep,
)

STANDARD = CostMatrix(tp=1.0, fn=1.0, fp=0.11)


def _sig(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def test_scaled_sigmoid_and_probation() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(3.5) == -1.0
    assert probationary_length(4032) == 604
    assert probationary_length(22695) == 750  # capped at 15 % of 5000


def test_hand_computed_file() -> None:
    """100 rows, probation 15, one window on rows 40..49 (width 10)."""
    p = prepare(100, [(40, 49)], STANDARD)
    assert p.null_raw == -1.0 and p.perfect_raw == 1.0

    def score(*rows: int) -> float:
        det = np.zeros(100, dtype=bool)
        det[list(rows)] = True
        return score_detections(p, det).raw

    assert score() == -1.0  # the null detector: one missed window
    assert score(40) == pytest.approx(1.0)  # the first row of the window: a full TP
    # later in the window earns less: position -(49 - 44 + 1) / 10 = -0.6
    assert score(44) == pytest.approx(_sig(-0.6) / _sig(-1.0))
    assert score(44, 45, 46) == score(44)  # only the first detection of a window counts
    assert score(5) == -1.0  # probationary rows are not scored
    # before any window: a full FP (-0.11); the window is still missed
    assert score(20) == pytest.approx(-1.0 - 0.11)
    # just after the window: distance |49 - 52| / (10 - 1), a small penalty
    assert score(40, 52) == pytest.approx(1.0 + 0.11 * _sig(3 / 9))
    # far after it (more than 3 window widths): a full FP
    assert score(40, 80) == pytest.approx(1.0 - 0.11)
    raw = score(44, 80)
    assert normalized(raw, -1.0, 1.0) == pytest.approx(100 * (raw + 1) / 2)


def test_sweep_agrees_with_the_direct_definition() -> None:
    rng = np.random.default_rng(3)
    p = prepare(600, [(150, 199), (400, 459)], STANDARD)
    scores = rng.random(600) ** 8
    thresholds = np.array([0.05, 0.3, 0.7, 0.95, 0.999, 2.0])
    swept = sweep(p, scores, thresholds)
    direct = [score_detections(p, scores >= t).raw for t in thresholds]
    assert swept == pytest.approx(direct)
    assert swept[-1] == p.null_raw


def test_profiles_file(shared_data: Path) -> None:
    profiles = load_profiles(shared_data / "nab" / "config" / "profiles.json")
    assert profiles["standard"] == STANDARD
    assert profiles["reward_low_FP_rate"].fp == 0.22
    assert profiles["reward_low_FN_rate"].fn == 2.0


def test_trivial_detectors_on_the_corpus(shared_data: Path) -> None:
    """The null detector scores 0 (as published in results_final), a perfect one 100, and a
    detector firing once at each window's middle row the hand-computable sigmoid value."""
    root = shared_data / "nab"
    files = load_corpus(root)
    assert {f.folder for f in files} == set(FOLDERS)
    published = json.loads((root / "results_final" / "final_results.json").read_text())
    cost = load_profiles(root / "config" / "profiles.json")["standard"]

    def null(f: object) -> np.ndarray:
        return np.zeros(len(f))  # type: ignore[arg-type]

    def perfect(f: object) -> np.ndarray:
        s = np.zeros(len(f))  # type: ignore[arg-type]
        for a, _ in f.windows:  # type: ignore[attr-defined]
            s[a] = 1.0
        return s

    def middle(f: object) -> np.ndarray:
        s = np.zeros(len(f))  # type: ignore[arg-type]
        for a, b in f.windows:  # type: ignore[attr-defined]
            s[(a + b) // 2] = 1.0
        return s

    assert evaluate("null", "t", null, files, cost).corpus_score == published["null"]["standard"]
    assert evaluate("perfect", "t", perfect, files, cost).corpus_score == pytest.approx(100.0)
    # expected: each window earns sigma(pos of its middle row) / sigma(-1)
    n_windows = sum(len(f.windows) for f in files)
    earned = sum(
        _sig(-(b - (a + b) // 2 + 1) / (b - a + 1)) / _sig(-1.0)
        for f in files
        for a, b in f.windows
    )
    expected = 100 * (earned + n_windows) / (2 * n_windows)
    assert evaluate("middle", "t", middle, files, cost).corpus_score == pytest.approx(expected)
