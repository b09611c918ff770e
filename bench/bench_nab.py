"""NAB standard-profile scores of every detector, per corpus folder, side by side.

    python -m bench.bench_nab            # the five folders in ../shared/data/nab
    python -m bench.bench_nab --quick    # two files per folder, fewer detectors

Each detector gets one threshold, chosen (as NAB does) to maximise its normalised score over
the whole run; folder scores use that threshold. artificialNoAnomaly has no anomaly windows:
the table shows the most alerts any of its files received (target: at most one).
Writes bench/results/nab.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from bench.nab.data import FOLDERS, NabFile, load_corpus
from bench.nab.detectors import DETECTORS
from bench.nab.runner import DetectorResult, evaluate
from bench.nab.scoring import load_profiles

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = Path(
    os.environ.get("CLOUDCIRCUIT_SHARED_DATA", ROOT.parent.parent / "shared" / "data")
)
SHORT = {
    "realAWSCloudwatch": "AWS",
    "realAdExchange": "AdExchange",
    "realKnownCause": "KnownCause",
    "artificialWithAnomaly": "artWith",
}
QUICK_DETECTORS = ("seasonal", "streaming", "rule_mad[h=day]", "windowed_gaussian")


def _subset(files: list[NabFile], per_folder: int) -> list[NabFile]:
    out: list[NabFile] = []
    for folder in FOLDERS:
        out.extend([f for f in files if f.folder == folder][:per_folder])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_nab", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two files per folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "nab")
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "nab.json")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))
    if not (args.data / "labels" / "combined_windows.json").is_file():
        console.print(f"[red]NAB data not found at {args.data}[/] (set CLOUDCIRCUIT_SHARED_DATA)")
        return 2
    files = load_corpus(args.data)
    names = list(DETECTORS)
    if args.quick:
        files = _subset(files, 2)
        names = [n for n in names if n in QUICK_DETECTORS]
    cost = load_profiles(args.data / "config" / "profiles.json")[args.profile]
    results: list[DetectorResult] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=len(names) * len(files))
        for name in names:
            detector, family = DETECTORS[name]
            progress.update(task, description=escape(name))
            results.append(
                evaluate(
                    name,
                    family,
                    detector,
                    files,
                    cost,
                    progress=lambda _f: progress.advance(task),
                )
            )
    folders = [f for f in FOLDERS if any(x.folder == f for x in files)]
    scored = [f for f in folders if f != "artificialNoAnomaly"]
    table = Table(title=f"NAB {args.profile} profile ({len(files)} files)")
    table.add_column("detector")
    table.add_column("family")
    table.add_column("corpus", justify="right")
    for folder in scored:
        table.add_column(SHORT.get(folder, folder), justify="right")
    table.add_column("NoAnomaly max alerts", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("s", justify="right")
    best_new = max((r for r in results if r.family == "new"), key=lambda r: r.corpus_score)
    for r in sorted(results, key=lambda r: -r.corpus_score):
        style = "bold green" if r is best_new else None
        table.add_row(
            escape(r.name),
            escape(r.family),
            f"{r.corpus_score:.1f}",
            *[f"{r.folder_scores.get(f, math.nan):.1f}" for f in scored],
            str(r.max_detections("artificialNoAnomaly")),
            f"{r.threshold:.3f}",
            f"{r.seconds:.1f}",
            style=style,
        )
    console.print(table)
    others = [r for r in results if r.family != "new"]
    beaten = all(best_new.corpus_score > r.corpus_score for r in others)
    quiet = best_new.max_detections("artificialNoAnomaly") <= 1
    console.print(
        f"best new detector: [bold]{escape(best_new.name)}[/] {best_new.corpus_score:.1f}; "
        f"beats every 0.3 rule and baseline: {'yes' if beaten else 'NO'}; "
        f"at most one alert per artificialNoAnomaly file: {'yes' if quiet else 'NO'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "profile": args.profile,
                "files": [f.name for f in files],
                "quick": args.quick,
                "results": [
                    {
                        "detector": r.name,
                        "family": r.family,
                        "corpus": r.corpus_score,
                        "folders": r.folder_scores,
                        "threshold": r.threshold,
                        "max_alerts_no_anomaly": r.max_detections("artificialNoAnomaly"),
                        "alerts_per_file": r.detections_per_file,
                        "seconds": r.seconds,
                    }
                    for r in results
                ],
                "best_new": best_new.name,
                "targets": {"beats_all_baselines": beaten, "quiet_on_no_anomaly": quiet},
            },
            indent=2,
        )
    )
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
