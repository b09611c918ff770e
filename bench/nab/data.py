"""The NAB corpus on disk: data/<folder>/<file>.csv and labels/combined_windows.json."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["FOLDERS", "NabFile", "load_corpus", "rows_per_day"]

#: the corpus folders this project scores on (a subset of NAB's)
FOLDERS = (
    "realAWSCloudwatch",
    "realAdExchange",
    "realKnownCause",
    "artificialNoAnomaly",
    "artificialWithAnomaly",
)


@dataclass(frozen=True)
class NabFile:
    """One labelled series: ``name`` is NAB's relative path, e.g. ``realAdExchange/x.csv``."""

    name: str
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    windows: tuple[tuple[int, int], ...]

    @property
    def folder(self) -> str:
        return self.name.split("/", 1)[0]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _parse(text: str) -> np.datetime64:
    return np.datetime64(datetime.fromisoformat(text.strip()))


def _read_csv(path: Path) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected header timestamp,value, got {header}")
        stamps: list[np.datetime64] = []
        values: list[float] = []
        for lineno, row in enumerate(reader, start=2):
            try:
                stamps.append(_parse(row[0]))
                values.append(float(row[1]))
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad row {row!r}: {exc}") from None
    return np.array(stamps, dtype="datetime64[s]"), np.array(values, dtype=np.float64)


def load_corpus(root: Path, folders: tuple[str, ...] = FOLDERS) -> list[NabFile]:
    """Every CSV under ``root/data/<folder>`` with its windows as inclusive row indices."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    out: list[NabFile] = []
    for folder in folders:
        for path in sorted((root / "data" / folder).glob("*.csv")):
            name = f"{folder}/{path.name}"
            if name not in windows:
                raise ValueError(f"{name} has no entry in labels/combined_windows.json")
            stamps, values = _read_csv(path)
            rows: list[tuple[int, int]] = []
            for start, end in windows[name]:
                left = int(np.searchsorted(stamps, _parse(start), side="left"))
                right = int(np.searchsorted(stamps, _parse(end), side="right")) - 1
                if left > right:
                    raise ValueError(f"{name}: window {start}..{end} holds no rows")
                rows.append((left, right))
            out.append(NabFile(name, stamps, values, tuple(rows)))
    return out


def rows_per_day(f: NabFile) -> int:
    """How many rows one day holds at the file's median cadence."""
    step = np.median(np.diff(f.timestamps).astype("timedelta64[s]").astype(np.float64))
    return max(1, round(86400.0 / step))
