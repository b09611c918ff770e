"""Finding FOCUS files (single file, glob, folder) and pointing at a bad row inside one.

Kept apart from the DuckDB reader so the error paths (which row of which file holds the value
DuckDB refused) are plain Python that needs no database.
"""

from __future__ import annotations

import csv
import glob
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from cloudcircuit.errors import DataError

__all__ = [
    "CSV_SUFFIXES",
    "NULL_STRINGS",
    "PARQUET_SUFFIXES",
    "file_format",
    "find_csv_row",
    "read_csv_header",
    "resolve_files",
]

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".snappy.parquet", ".gz.parquet")
#: cell texts read as null: the literal NULL (FinOps sample data), null (spec examples), empty
NULL_STRINGS = ("NULL", "null", "")


def file_format(path: Path) -> str | None:
    """``"csv"``, ``"parquet"`` or None for a file we do not read."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def resolve_files(spec: str | Path) -> list[Path]:
    """The FOCUS files named by ``spec``: a file, a folder (searched recursively) or a glob.

    Files are returned sorted so that reads, errors and row numbers are reproducible.
    """
    text = str(spec)
    if _is_glob(text):
        matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        files = [p for p in matches if p.is_file() and file_format(p)]
        if not files:
            why = (
                "matches no .csv, .csv.gz or .parquet file"
                if not matches
                else (
                    f"matches {len(matches)} path(s) but none is a .csv, .csv.gz or .parquet file"
                )
            )
            raise DataError(why, file=text)
        return files
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and file_format(p))
        if not files:
            raise DataError("folder holds no .csv, .csv.gz or .parquet file", file=text)
        return files
    if path.is_file():
        if file_format(path) is None:
            raise DataError(
                "not a FOCUS file this reader knows (expected .csv, .csv.gz or .parquet)",
                file=text,
            )
        return [path]
    raise DataError("no such file or folder", file=text)


def _open_text(path: Path) -> TextIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _rows(path: Path, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """(data row number, line number, cells) for each non-blank row after the header."""
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        number = 0
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            number += 1
            yield number, reader.line_num, cells


def read_csv_header(path: Path) -> list[str]:
    """The header row of a CSV file, read by Python (for files DuckDB cannot sniff)."""
    with _open_text(path) as fh:
        sample = fh.read(65536)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    header = next(csv.reader(sample.splitlines(), dialect), [])
    return [h.strip() for h in header]


def find_csv_row(
    path: Path, column: str, raw: str | None, *, delimiter: str = ","
) -> tuple[int, int] | None:
    """(data row, line) of the first row whose ``column`` holds ``raw`` (None: a null cell).

    DuckDB tells us WHICH value it could not use; this finds WHERE it is, so the error message
    can send a person straight to the row.
    """
    with _open_text(path) as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    if not header:
        return None
    lowered = [h.strip().lower() for h in header]
    if column.lower() not in lowered:
        return None
    index = lowered.index(column.lower())
    for number, line, cells in _rows(path, delimiter):
        cell = cells[index] if index < len(cells) else ""
        if raw is None:
            if cell.strip() in NULL_STRINGS:
                return number, line
        elif cell == raw or cell.strip() == raw.strip():
            return number, line
    return None
