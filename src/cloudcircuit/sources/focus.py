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
from cloudcircuit.sources._files import (
    NULL_STRINGS,
    file_format,
    find_csv_row,
    read_csv_header,
    resolve_files,
)
from cloudcircuit.sources._focus_sql import (
    CHECKED,
    DIMENSION_COLUMNS,
    ident,
    lit,
    null_text_sql,
    projection,
    reader,
)
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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_duckdb() -> ModuleType:
    """Import DuckDB, or explain which extra installs it."""
    try:
        import duckdb
    except ImportError as exc:
        raise ImportError(
            "reading FOCUS files needs DuckDB: pip install 'cloudcircuit[focus]'"
        ) from exc
    return duckdb


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
        self._union_types: dict[tuple[Path, ...], dict[str, str]] = {}

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
        try:
            while thread.is_alive():
                thread.join(0.1)
                try:
                    done = float(con.query_progress())
                except duckdb.Error:
                    done = -1.0
                self.progress(label, done / 100.0 if done >= 0 else None)
        except KeyboardInterrupt:
            con.interrupt()  # stop DuckDB too, not just the wait for it
            raise
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
                relation = f"read_csv({lit(str(path))}, header = true, all_varchar = true)"
            else:
                relation = f"read_parquet({lit(str(path))})"
            try:
                described = self._run(
                    con, f"DESCRIBE SELECT * FROM {relation}", None, "Reading headers"
                )
                columns = {str(r[0]).strip(): str(r[1]) for r in described}
            except DataError:
                if fmt != "csv":
                    raise
                # DuckDB could not sniff it: read the header ourselves, so that a file that is
                # not FOCUS at all is reported by its missing columns, not by a parser message
                columns = dict.fromkeys(read_csv_header(path), "VARCHAR")
                self._check_columns([FocusFile(path, fmt, columns, self.version or "1.0")], ())
                raise
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

    def _base_sql(self, con: Any, files: Sequence[FocusFile]) -> str:
        """The normalized relation over ``files``: one projection per format, UNION ALL.

        Column types come from DESCRIBE of the union itself (files may disagree, e.g. DECIMAL
        in one and DOUBLE in another; DuckDB's union_by_name settles on a common type).
        """
        selects: list[str] = []
        for fmt in ("csv", "parquet"):
            paths = tuple(f.path for f in files if f.format == fmt)
            if not paths:
                continue
            types = self._union_types.get(paths)
            if types is None:
                described = self._run(
                    con, f"DESCRIBE SELECT * FROM {reader(paths, fmt)}", None, "Reading headers"
                )
                types = {str(r[0]): str(r[1]) for r in described}
                self._union_types[paths] = types
            selects.append(projection(paths, fmt, types))
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
        self._union_types = {}
        con = self._connect()
        try:
            files = self._files(con, paths)
            self._check_columns(files, ("ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency"))
            base = self._base_sql(con, files)
            metrics = []
            for name in CHECKED:
                metrics.append(f"count(*) FILTER (WHERE {ident(name + '_bad')})")
                metrics.append(f"count(*) FILTER (WHERE {ident(name + '_missing')})")
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
            bad = {name: int(r[2 + 2 * i]) for i, name in enumerate(CHECKED)}
            missing = {name: int(r[3 + 2 * i]) for i, name in enumerate(CHECKED)}
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
                    f"FROM ({self._base_sql(con, profile.files)}) GROUP BY _file"
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
            pred = ident(name + ("_bad" if kind == "bad" else "_missing"))
            sql = (
                f"SELECT _row, {ident(name + '_raw')} FROM ({self._base_sql(con, [f])}) "
                f"WHERE {pred} ORDER BY _row NULLS LAST LIMIT 1"
            )
            found = self._run(con, sql, None, "Locating a bad row")
            delimiter = ","
            if f.format == "csv":
                sniff = self._run(
                    con,
                    f"SELECT Delimiter FROM sniff_csv({lit(str(f.path))})",
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
        needed = [cost_col, *(DIMENSION_COLUMNS[d] for d in used if not d.startswith("tag:"))]
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
                exprs[dim] = f"json_extract_string(Tags, $tag{i})"
            else:
                exprs[dim] = ident("_dim_" + dim)
        lo_us = (lo - _EPOCH) // timedelta(microseconds=1)
        hi_us = (hi - _EPOCH) // timedelta(microseconds=1)
        where = [f"ChargePeriodStart >= {lo_us}", f"ChargePeriodStart < {hi_us}"]
        for j, (dim, values) in enumerate(sorted(filters.items())):
            names = []
            # provider names ignore case: a policy's "aws" selects FOCUS's "AWS"
            fold = dim == "provider"
            for k, value in enumerate(v for v in values if str(v) not in NULL_STRINGS):
                params[f"f{j}_{k}"] = str(value).casefold() if fold else str(value)
                names.append(f"$f{j}_{k}")
            column = f"lower({exprs[dim]})" if fold else exprs[dim]
            allowed = [f"{column} IN ({', '.join(names)})"] if names else []
            if any(str(v) in NULL_STRINGS for v in values):  # "" selects the untagged/unset
                allowed.append(null_text_sql(exprs[dim]))
            where.append(f"({' OR '.join(allowed)})")
        if gran is Granularity.MONTH:
            index = (
                f"((year(make_timestamp(ChargePeriodStart)) - {lo.year}) * 12 "
                f"+ month(make_timestamp(ChargePeriodStart)) - {lo.month})"
            )
        else:
            step = 3_600_000_000 if gran is Granularity.HOUR else 86_400_000_000
            index = f"((ChargePeriodStart - {lo_us}) // {step})"
        cols = [ident("d" + str(i)) for i in range(len(dims))]
        raw_dims = [f"{exprs[d]} AS {col}" for d, col in zip(dims, cols, strict=True)]
        clean_dims = [f"CASE WHEN {null_text_sql(c)} THEN '' ELSE {c} END AS {c}" for c in cols]
        keys = ", ".join([*cols, "idx", "cur"])
        con = self._connect()
        try:
            base = self._base_sql(con, profile.files)
            # inner: every charge row, grouped by the raw values (no per-row text clean-up);
            # outer: the few grouped rows, null markers folded into "" and summed again,
            # still in exact DECIMAL
            inner = (
                f"SELECT {keys}, sum(cost) AS amount, count(*) AS n "
                f"FROM (SELECT {', '.join([*raw_dims, f'{index} AS idx'])}, "
                f"CAST({ident(cost_col)} AS DECIMAL(38, 12)) AS cost, _cur AS cur "
                f"FROM ({base}) WHERE {' AND '.join(where)}) GROUP BY {keys}"
            )
            sql = (
                f"SELECT {keys}, CAST(sum(amount) AS DOUBLE), CAST(sum(n) AS BIGINT) "
                f"FROM (SELECT {', '.join([*clean_dims, 'idx', 'cur', 'amount', 'n'])} "
                f"FROM ({inner})) GROUP BY {keys} ORDER BY {keys}"
            )
            rows = self._run(con, sql, params, f"Aggregating {profile.rows:,} FOCUS rows")
        finally:
            con.close()

        n_dims = len(dims)
        sums: dict[tuple[str, ...], dict[int, float]] = {}
        currencies: dict[tuple[str, ...], set[str]] = {}
        matched = 0
        for r in rows:
            group = tuple(str(v) for v in r[:n_dims])
            idx, cur, amount, n = r[n_dims:]
            bucket = sums.setdefault(group, {})
            bucket[int(idx)] = bucket.get(int(idx), 0.0) + float(amount)
            currencies.setdefault(group, set()).add(str(cur))
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
