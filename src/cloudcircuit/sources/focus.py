"""FOCUS 1.0-1.2 export files (CSV or Parquet) as a spend source, aggregated inside DuckDB.

FOCUS is the FinOps Foundation's common billing format; AWS Data Exports, Azure Cost Management
and the GCP BigQuery export all write it. This source reads one file, a glob or a folder, checks
the columns against the FOCUS version, and answers a :class:`SpendQuery` with zero-filled
:class:`SpendSeries`. Every sum, group and time bucket is computed by DuckDB: Python only sees
one row per (group, bucket), so ten million charge rows cost seconds, not minutes.

Data rules (each one a test):

- the literal ``NULL``/``null`` and empty cells are null;
- credits and refunds stay negative (they lower spend; nothing takes an absolute value);
- ``CostBasis.BILLED`` sums BilledCost, ``CostBasis.EFFECTIVE`` sums EffectiveCost;
- timestamps must be ISO 8601 (``2024-09-01T00:00:00Z`` or ``2024-09-01 00:00:00``); naive ones
  are UTC; a value such as ``5/1/25`` is refused rather than read as the year 5;
- an unparseable date, a NaN or infinite cost, a missing mandatory value, an invalid Tags JSON
  or an empty input is a :class:`DataError` naming the file, the row and the column;
- two currencies in one group is a :class:`CurrencyMismatchError` naming the scope.

DuckDB is the ``focus`` extra; it is imported only when a FOCUS source is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from cloudcircuit.errors import CurrencyMismatchError, DataError, InputError, SchemaError
from cloudcircuit.providers import FetchResult, SourceStats, SpendQuery
from cloudcircuit.sources._files import file_format, find_csv_row, resolve_files
from cloudcircuit.sources.focus_columns import detect_version, mandatory_columns, normalize_version
from cloudcircuit.spend import (
    CostBasis,
    Granularity,
    SpendSeries,
    bucket_range,
    parse_dimensions,
    scope_key,
    to_utc,
)

__all__ = ["FocusFile", "FocusProfile", "FocusSource", "ProgressCallback", "load_duckdb"]

#: called with (what is being done, fraction done in [0, 1] or None when unknown)
ProgressCallback = Callable[[str, float | None], None]

#: dimension -> FOCUS column
_DIMENSION_COLUMNS = {
    "provider": "ProviderName",
    "sub_account": "SubAccountId",
    "service": "ServiceName",
    "region": "RegionId",
    "resource": "ResourceId",
}
_ISO_TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|z|UTC|[+-]\d{2}(:?\d{2})?)?"
)
_TIMESTAMP_TYPES = ("TIMESTAMP", "DATE")
_NUMERIC_TYPES = (
    "DOUBLE",
    "FLOAT",
    "DECIMAL",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "REAL",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_duckdb() -> ModuleType:
    """Import DuckDB, or explain which extra installs it."""
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - the dev environment has duckdb
        raise ImportError(
            "reading FOCUS files needs DuckDB: pip install 'cloudcircuit[focus]'"
        ) from exc
    return duckdb


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


@dataclass(frozen=True, slots=True)
class FocusFile:
    """One input file: its format, its columns (name -> DuckDB type) and FOCUS version."""

    path: Path
    format: str
    columns: Mapping[str, str]
    version: str

    def column(self, name: str) -> str | None:
        """The file's spelling of a FOCUS column (matched case-insensitively), or None."""
        lowered = name.lower()
        return next((c for c in self.columns if c.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class _FileCounts:
    rows: int
    bad: Mapping[str, int]
    missing: Mapping[str, int]
    first_us: int | None
    last_us: int | None


@dataclass(slots=True)
class FocusProfile:
    """What one validation pass over all rows found (cached until a file changes)."""

    files: list[FocusFile]
    rows: int
    bytes: int
    first_start: datetime | None
    last_end: datetime | None
    counts: dict[str, _FileCounts] = field(default_factory=dict)
    #: rows per file whose Tags is not valid JSON (filled the first time a query reads tags)
    bad_tags: dict[str, int] | None = None

    @property
    def versions(self) -> list[str]:
        return sorted({f.version for f in self.files})


# -- building the normalized relation -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """How one checked column is read: its value, when it is bad or missing, its raw text."""

    column: str
    value: str
    bad: str
    raw: str
    missing: str


def _text_expr(col: str | None, typ: str | None) -> str:
    if col is None:
        return "CAST(NULL AS VARCHAR)"
    c = _ident(col)
    if typ is not None and typ.startswith("VARCHAR"):
        return f"CASE WHEN {c} IN ('', 'NULL', 'null') THEN NULL ELSE {c} END"
    return f"CAST({c} AS VARCHAR)"


def _timestamp_field(column: str, col: str | None, typ: str | None) -> _Field:
    """A date/time column as epoch microseconds (UTC).

    Microseconds, not TIMESTAMP: converting a TIMESTAMP WITH TIME ZONE column to a naive
    TIMESTAMP goes through the time-zone machinery row by row and costs more than the whole
    aggregation; ``epoch_us`` of the stored instant is free, and so are range filters on it.
    """
    if col is None or typ is None:
        return _Field(column, "CAST(NULL AS BIGINT)", "false", "CAST(NULL AS VARCHAR)", "true")
    c = _ident(col)
    raw = _text_expr(col, typ)
    if typ.startswith("DATE"):
        return _Field(column, f"epoch_us(CAST({c} AS TIMESTAMP))", "false", raw, f"{c} IS NULL")
    if typ.startswith(_TIMESTAMP_TYPES):
        return _Field(column, f"epoch_us({c})", "false", raw, f"{c} IS NULL")
    if typ.startswith("VARCHAR"):
        # naive texts are read in the session zone, which _connect pins to UTC
        text = f"trim({raw})"
        value = (
            f"CASE WHEN regexp_full_match({text}, {_lit(_ISO_TIMESTAMP)}) "
            f"THEN epoch_us(TRY_CAST(replace({text}, 'UTC', 'Z') AS TIMESTAMPTZ)) END"
        )
        bad = f"({raw} IS NOT NULL AND ({value}) IS NULL)"
        return _Field(column, value, bad, raw, f"{raw} IS NULL")
    raise SchemaError(f"column {col} has type {typ}; FOCUS needs an ISO 8601 date/time")


def _cost_field(column: str, col: str | None, typ: str | None) -> _Field:
    if col is None or typ is None:
        return _Field(column, "CAST(NULL AS DOUBLE)", "false", "CAST(NULL AS VARCHAR)", "true")
    c = _ident(col)
    raw = _text_expr(col, typ)
    if typ.startswith(_NUMERIC_TYPES):
        value = f"CAST({c} AS DOUBLE)"
        bad = f"(isnan({value}) OR isinf({value}))"
        return _Field(column, value, bad, raw, f"{c} IS NULL")
    if not typ.startswith("VARCHAR"):
        raise SchemaError(f"column {col} has type {typ}; FOCUS needs a decimal number")
    value = f"TRY_CAST(trim({raw}) AS DOUBLE)"
    bad = f"({raw} IS NOT NULL AND (({value}) IS NULL OR isnan({value}) OR isinf({value})))"
    return _Field(column, value, bad, raw, f"{raw} IS NULL")


def _tags_field(col: str | None, typ: str | None) -> _Field:
    if col is None or typ is None:
        return _Field("Tags", "CAST(NULL AS VARCHAR)", "false", "CAST(NULL AS VARCHAR)", "true")
    c = _ident(col)
    if typ.startswith("MAP") or typ.startswith("STRUCT"):
        # Parquet exports (AWS) write Tags as map<string,string>: read it as JSON text
        value = f"CAST(to_json({c}) AS VARCHAR)"
        return _Field("Tags", value, "false", value, f"{c} IS NULL")
    raw = _text_expr(col, typ)
    bad = f"({raw} IS NOT NULL AND NOT json_valid({raw}))"
    return _Field("Tags", raw, bad, raw, f"{raw} IS NULL")


#: columns the validation pass checks on every row (Tags only when a query reads tags)
_CHECKED = (
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
)


def _projection(files: Sequence[FocusFile], fmt: str, types: Mapping[str, str]) -> str:
    """SELECT of the normalized columns over the union of ``files`` (one format)."""
    listing = "[" + ", ".join(_lit(str(f.path)) for f in files) + "]"
    if fmt == "csv":
        reader = (
            f"read_csv({listing}, header = true, all_varchar = true, union_by_name = true, "
            f"filename = true, nullstr = ['NULL', 'null', ''])"
        )
        row = "CAST(NULL AS BIGINT)"
    else:
        reader = (
            f"read_parquet({listing}, union_by_name = true, filename = true, "
            f"file_row_number = true)"
        )
        row = "file_row_number + 1"
    lowered = {name.lower(): name for name in types}

    def col(name: str) -> tuple[str | None, str | None]:
        real = lowered.get(name.lower())
        return real, (types[real] if real else None)

    fields = {
        "ChargePeriodStart": _timestamp_field("ChargePeriodStart", *col("ChargePeriodStart")),
        "ChargePeriodEnd": _timestamp_field("ChargePeriodEnd", *col("ChargePeriodEnd")),
        "BilledCost": _cost_field("BilledCost", *col("BilledCost")),
        "EffectiveCost": _cost_field("EffectiveCost", *col("EffectiveCost")),
        "Tags": _tags_field(*col("Tags")),
    }
    currency = _text_expr(*col("BillingCurrency"))
    parts = ["CAST(filename AS VARCHAR) AS _file", f"{row} AS _row"]
    for name, fld in fields.items():
        parts += [
            f"{fld.value} AS {_ident(name)}",
            f"{fld.bad} AS {_ident(name + '_bad')}",
            f"{fld.raw} AS {_ident(name + '_raw')}",
            f"{fld.missing} AS {_ident(name + '_missing')}",
        ]
    parts += [
        f"{currency} AS BillingCurrency",
        "false AS BillingCurrency_bad",
        f"{currency} AS BillingCurrency_raw",
        f"({currency}) IS NULL AS BillingCurrency_missing",
    ]
    for dim, focus_col in _DIMENSION_COLUMNS.items():
        parts.append(f"{_text_expr(*col(focus_col))} AS {_ident('_dim_' + dim)}")
    return f"SELECT {', '.join(parts)} FROM {reader}"


# -- the source ---------------------------------------------------------------------------


class FocusSource:
    """FOCUS files as a :class:`~cloudcircuit.providers.SpendSource`.

    ``path`` is a file, a folder (read recursively) or a glob of ``.csv``, ``.csv.gz`` and
    ``.parquet`` files. ``version`` pins the FOCUS version ("1.0", "1.1", "1.2"); by default
    each file's version is detected from its columns. ``strict`` requires every Mandatory
    column of the version (False: only the columns a query reads). A bucket is complete when
    it ends no later than the newest ChargePeriodEnd seen and than ``now - settle_hours``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        version: str | None = None,
        name: str = "focus",
        settle_hours: float = 0.0,
        now: datetime | None = None,
        strict: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.path = str(path)
        self.version = normalize_version(version) if version is not None else None
        self.name = name
        if settle_hours < 0:
            raise InputError(f"settle_hours must be >= 0, got {settle_hours}")
        self.settle_hours = float(settle_hours)
        self.now = to_utc(now) if now is not None else None
        self.strict = strict
        self.progress = progress
        self._profile: FocusProfile | None = None
        self._signature: tuple[tuple[str, int, int], ...] | None = None

    def __repr__(self) -> str:
        return f"FocusSource({self.path!r}, name={self.name!r})"

    # -- DuckDB plumbing ---------------------------------------------------------------

    def _connect(self) -> Any:
        duckdb = load_duckdb()
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        # progress is tracked (for query_progress) but never printed by DuckDB itself
        con.execute(f"SET enable_progress_bar = {'true' if self.progress else 'false'}")
        con.execute("SET enable_progress_bar_print = false")
        con.execute("SET progress_bar_time = 0")
        return con

    def _run(self, con: Any, sql: str, params: Mapping[str, Any] | None, label: str) -> list[Any]:
        """Execute and fetch; report DuckDB's own progress while a slow query runs."""
        duckdb = load_duckdb()
        if self.progress is None:
            try:
                rows: list[Any] = con.execute(sql, dict(params or {})).fetchall()
            except duckdb.Error as exc:
                raise self._wrap(exc) from None
            return rows
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["rows"] = con.execute(sql, dict(params or {})).fetchall()
            except BaseException as exc:  # re-raised in the calling thread below
                box["error"] = exc

        thread = threading.Thread(target=work, name="cloudcircuit-focus", daemon=True)
        thread.start()
        self.progress(label, None)
        while thread.is_alive():
            thread.join(0.1)
            try:
                done = float(con.query_progress())
            except Exception:
                done = -1.0
            self.progress(label, done / 100.0 if done >= 0 else None)
        self.progress(label, 1.0)
        error = box.get("error")
        if isinstance(error, duckdb.Error):
            raise self._wrap(error) from None
        if error is not None:
            raise error
        result: list[Any] = box["rows"]
        return result

    def _wrap(self, exc: Exception) -> DataError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DataError(f"DuckDB could not read the FOCUS data: {first}", file=self.path)

    # -- discovery and validation -------------------------------------------------------

    def _files(self, con: Any, paths: Sequence[Path]) -> list[FocusFile]:
        out: list[FocusFile] = []
        for path in paths:
            fmt = file_format(path) or "csv"
            if path.stat().st_size == 0:
                raise DataError("file is empty (0 bytes): not a FOCUS export", file=str(path))
            if fmt == "csv":
                reader = f"read_csv({_lit(str(path))}, header = true, all_varchar = true)"
            else:
                reader = f"read_parquet({_lit(str(path))})"
            described = self._run(con, f"DESCRIBE SELECT * FROM {reader}", None, "Reading headers")
            columns = {str(r[0]).strip(): str(r[1]) for r in described}
            version = self.version or detect_version(columns)
            out.append(FocusFile(path, fmt, columns, version))
        return out

    def _check_columns(self, files: Sequence[FocusFile], needed: Sequence[str]) -> None:
        """Every file must hold the columns its version makes Mandatory (strict) and the
        columns this query reads; the message names the file and every missing column."""
        for f in files:
            wanted = list(mandatory_columns(f.version)) if self.strict else []
            wanted += [c for c in needed if c not in wanted]
            missing = [c for c in wanted if f.column(c) is None]
            if missing:
                others = sum(
                    1 for g in files if g is not f and any(g.column(c) is None for c in wanted)
                )
                more = f" (and {others} more file(s) like it)" if others else ""
                raise SchemaError(
                    f"not a FOCUS {f.version} file: missing required column(s) "
                    f"{', '.join(missing)}{more}",
                    file=str(f.path),
                )

    def _signature_of(self, paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
        out = []
        for p in paths:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _base_sql(self, files: Sequence[FocusFile]) -> str:
        selects: list[str] = []
        for fmt in ("csv", "parquet"):
            group = [f for f in files if f.format == fmt]
            if not group:
                continue
            types: dict[str, str] = {}
            for f in group:
                for name, typ in f.columns.items():
                    types.setdefault(name, typ)
            selects.append(_projection(group, fmt, types))
        return " UNION ALL ".join(f"({s})" for s in selects)

    def profile(self) -> FocusProfile:
        """Read every row once: counts, bad values per column and file, time span.

        Cached until a file changes (mtime or size), so a scan that asks for several queries
        validates once.
        """
        paths = resolve_files(self.path)
        signature = self._signature_of(paths)
        if self._profile is not None and signature == self._signature:
            return self._profile
        con = self._connect()
        try:
            files = self._files(con, paths)
            self._check_columns(files, ("ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency"))
            base = self._base_sql(files)
            metrics = []
            for name in _CHECKED:
                metrics.append(f"count(*) FILTER (WHERE {_ident(name + '_bad')})")
                metrics.append(f"count(*) FILTER (WHERE {_ident(name + '_missing')})")
            sql = (
                f"SELECT _file, count(*), {', '.join(metrics)}, "
                f"min(ChargePeriodStart), max(ChargePeriodEnd) "
                f"FROM ({base}) GROUP BY _file"
            )
            rows = self._run(con, sql, None, f"Checking {len(files)} FOCUS file(s)")
        finally:
            con.close()
        counts: dict[str, _FileCounts] = {}
        for r in rows:
            bad = {name: int(r[2 + 2 * i]) for i, name in enumerate(_CHECKED)}
            missing = {name: int(r[3 + 2 * i]) for i, name in enumerate(_CHECKED)}
            counts[str(r[0])] = _FileCounts(int(r[1]), bad, missing, r[-2], r[-1])
        total = sum(c.rows for c in counts.values())
        if total == 0:
            which = str(files[0].path) if len(files) == 1 else f"{self.path} ({len(files)} files)"
            raise DataError("no charge rows: the input holds only a header", file=which)
        firsts = [c.first_us for c in counts.values() if c.first_us is not None]
        lasts = [c.last_us for c in counts.values() if c.last_us is not None]
        profile = FocusProfile(
            files=files,
            rows=total,
            bytes=sum(p.stat().st_size for p in paths),
            first_start=_from_us(min(firsts)) if firsts else None,
            last_end=_from_us(max(lasts)) if lasts else None,
            counts=counts,
        )
        self._profile, self._signature = profile, signature
        return profile

    def time_range(self) -> tuple[datetime, datetime] | None:
        """(first ChargePeriodStart, last ChargePeriodEnd) over all rows, aware UTC."""
        p = self.profile()
        self._raise_first_problem(p, ["ChargePeriodStart", "ChargePeriodEnd"])
        if p.first_start is None or p.last_end is None:
            return None
        return p.first_start, p.last_end

    def _raise_first_problem(self, profile: FocusProfile, columns: Sequence[str]) -> None:
        """Raise a DataError for the first bad or missing value in ``columns``, if any."""
        for f in profile.files:
            c = profile.counts.get(str(f.path))
            if c is None:
                continue
            for name in columns:
                if c.bad.get(name, 0):
                    self._locate_and_raise(f, name, "bad", c.bad[name])
                if c.missing.get(name, 0):
                    self._locate_and_raise(f, name, "missing", c.missing[name])

    def _check_tags(self, profile: FocusProfile) -> None:
        """Tags must be JSON objects (or null) wherever a query groups or filters by a tag."""
        if profile.bad_tags is None:
            con = self._connect()
            try:
                sql = (
                    f"SELECT _file, count(*) FILTER (WHERE Tags_bad) "
                    f"FROM ({self._base_sql(profile.files)}) GROUP BY _file"
                )
                rows = self._run(con, sql, None, "Checking Tags")
            finally:
                con.close()
            profile.bad_tags = {str(r[0]): int(r[1]) for r in rows}
        for f in profile.files:
            count = profile.bad_tags.get(str(f.path), 0)
            if count:
                self._locate_and_raise(f, "Tags", "bad", count)

    def _locate_and_raise(self, f: FocusFile, name: str, kind: str, count: int) -> None:
        con = self._connect()
        try:
            pred = _ident(name + ("_bad" if kind == "bad" else "_missing"))
            sql = (
                f"SELECT _row, {_ident(name + '_raw')} FROM ({self._base_sql([f])}) "
                f"WHERE {pred} ORDER BY _row NULLS LAST LIMIT 1"
            )
            found = self._run(con, sql, None, "Locating a bad row")
            delimiter = ","
            if f.format == "csv":
                sniff = self._run(
                    con,
                    f"SELECT Delimiter FROM sniff_csv({_lit(str(f.path))})",
                    None,
                    "Locating a bad row",
                )
                delimiter = str(sniff[0][0]) if sniff else ","
        finally:
            con.close()
        row_no, raw = (found[0][0], found[0][1]) if found else (None, None)
        line = ""
        if row_no is None and f.format == "csv":
            hit = find_csv_row(f.path, f.column(name) or name, raw, delimiter=delimiter)
            if hit:
                row_no, line = hit[0], f" (line {hit[1]})"
        also = f"; {count - 1} more row(s) like it in this file" if count > 1 else ""
        if kind == "missing":
            what = f"{name} is empty; FOCUS requires a value{line}{also}"
        elif name in ("ChargePeriodStart", "ChargePeriodEnd"):
            what = (
                f"unparseable date {raw!r} (FOCUS needs ISO 8601, "
                f"e.g. 2024-09-01T00:00:00Z){line}{also}"
            )
        elif name == "Tags":
            what = f"Tags is not a JSON object: {raw!r}{line}{also}"
        else:
            what = f"cost {raw!r} is not a finite number{line}{also}"
        raise DataError(
            what, file=str(f.path), row=None if row_no is None else int(row_no), field=name
        )

    # -- the query -----------------------------------------------------------------------

    def fetch(self, query: SpendQuery) -> FetchResult:
        """Series for ``query``: one per group, zero-filled over ``[start, end)``."""
        dims = parse_dimensions(list(query.group_by))
        filters = {parse_dimensions([k])[0]: tuple(v) for k, v in query.filters.items() if v}
        cost_col = "BilledCost" if query.cost_basis is CostBasis.BILLED else "EffectiveCost"
        used = {*dims, *filters}
        needed = [cost_col, *(_DIMENSION_COLUMNS[d] for d in used if not d.startswith("tag:"))]
        if any(d.startswith("tag:") for d in used):
            needed.append("Tags")
        profile = self.profile()
        self._check_columns(profile.files, needed)
        self._raise_first_problem(
            profile, ["ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency", cost_col]
        )
        if "Tags" in needed:
            self._check_tags(profile)

        gran = query.granularity
        lo = gran.floor(query.start)
        hi = to_utc(query.end)
        if hi <= lo:
            raise InputError(f"query end {hi.isoformat()} is not after start {lo.isoformat()}")
        starts = tuple(bucket_range(lo, hi, gran))

        params: dict[str, Any] = {}
        exprs: dict[str, str] = {}
        for i, dim in enumerate(sorted(used)):
            if dim.startswith("tag:"):
                key = dim[4:]
                if '"' in key:
                    raise InputError(f"tag key {key!r} may not contain a double quote")
                params[f"tag{i}"] = f'$."{key}"'
                exprs[dim] = f"COALESCE(json_extract_string(Tags, $tag{i}), '')"
            else:
                exprs[dim] = f"COALESCE({_ident('_dim_' + dim)}, '')"
        lo_us = int((lo - _EPOCH) / timedelta(microseconds=1))
        hi_us = int((hi - _EPOCH) / timedelta(microseconds=1))
        where = [f"ChargePeriodStart >= {lo_us}", f"ChargePeriodStart < {hi_us}"]
        for j, (dim, values) in enumerate(sorted(filters.items())):
            names = []
            for k, value in enumerate(values):
                params[f"f{j}_{k}"] = str(value)
                names.append(f"$f{j}_{k}")
            where.append(f"{exprs[dim]} IN ({', '.join(names)})")
        if gran is Granularity.MONTH:
            index = (
                f"((year(make_timestamp(ChargePeriodStart)) - {lo.year}) * 12 "
                f"+ month(make_timestamp(ChargePeriodStart)) - {lo.month})"
            )
        else:
            step = 3_600_000_000 if gran is Granularity.HOUR else 86_400_000_000
            index = f"((ChargePeriodStart - {lo_us}) // {step})"
        select_dims = [f"{exprs[d]} AS {_ident('d' + str(i))}" for i, d in enumerate(dims)]
        group_cols = [_ident("d" + str(i)) for i in range(len(dims))]
        base = self._base_sql(profile.files)
        sql = (
            f"SELECT {', '.join([*group_cols, 'idx'])}, CAST(sum(cost) AS DOUBLE), "
            f"min(cur), max(cur), count(*) "
            f"FROM (SELECT {', '.join([*select_dims, f'{index} AS idx'])}, "
            f"CAST({_ident(cost_col)} AS DECIMAL(38, 12)) AS cost, BillingCurrency AS cur "
            f"FROM ({base}) "
            f"WHERE {' AND '.join(where)}) "
            f"GROUP BY {', '.join([*group_cols, 'idx'])} ORDER BY {', '.join([*group_cols, 'idx'])}"
        )
        con = self._connect()
        try:
            rows = self._run(con, sql, params, f"Aggregating {profile.rows:,} FOCUS rows")
        finally:
            con.close()

        n_dims = len(dims)
        sums: dict[tuple[str, ...], dict[int, float]] = {}
        currencies: dict[tuple[str, ...], set[str]] = {}
        matched = 0
        for r in rows:
            group = tuple(str(v) for v in r[:n_dims])
            idx, amount, cmin, cmax, n = r[n_dims:]
            sums.setdefault(group, {})[int(idx)] = float(amount)
            currencies.setdefault(group, set()).update({str(cmin), str(cmax)})
            matched += int(n)
        for group, seen in currencies.items():
            if len(seen) > 1:
                scope = scope_key(dict(zip(dims, group, strict=True)))
                pair = sorted(seen)
                raise CurrencyMismatchError(
                    f"two currencies in scope {scope}: {pair[0]} and {pair[1]} "
                    f"(query a narrower scope or group by a dimension that separates them)",
                    file=self.path,
                    field="BillingCurrency",
                )

        now = self.now or datetime.now(UTC)
        cutoff = now - timedelta(hours=self.settle_hours)
        if profile.last_end is not None:
            cutoff = min(cutoff, profile.last_end)
        complete = np.array([gran.next(s) <= cutoff for s in starts], dtype=np.bool_)
        series: list[SpendSeries] = []
        for group in sorted(sums):
            amounts = np.zeros(len(starts), dtype=np.float64)
            for idx, amount in sums[group].items():
                amounts[idx] = amount
            series.append(
                SpendSeries(
                    scope=dict(zip(dims, group, strict=True)),
                    granularity=gran,
                    starts=starts,
                    amounts=amounts,
                    complete=complete.copy(),
                    currency=next(iter(currencies[group])),
                    cost_basis=query.cost_basis,
                )
            )
        stats = SourceStats(
            source=self.name,
            bytes_processed=profile.bytes,
            rows_read=profile.rows,
            freshness=profile.last_end,
            notes=[
                f"{len(profile.files)} file(s), FOCUS {', '.join(profile.versions)}",
                f"{matched} row(s) in range and filters",
            ],
        )
        return FetchResult(series=series, stats=stats)
