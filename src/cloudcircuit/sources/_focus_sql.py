"""SQL that turns FOCUS files into one normalized DuckDB relation (no DuckDB import here).

Every input format and column type ends up as the same columns: the file and row of each charge,
ChargePeriodStart/End as epoch microseconds, BilledCost/EffectiveCost as DOUBLE, the currency,
the dimensions as text with null markers removed, Tags as JSON text, and for each checked column
``<name>_bad`` (unparseable, NaN, infinite), ``<name>_missing`` (null) and ``<name>_raw`` (the
text as written, for error messages). The validation pass and the aggregation both read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudcircuit.errors import SchemaError

__all__ = [
    "CHECKED",
    "DIMENSION_COLUMNS",
    "ident",
    "lit",
    "null_text_sql",
    "projection",
    "reader",
]

DIMENSION_COLUMNS = {
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


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- building the normalized relation -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """How one checked column is read: its value, when it is bad or missing, its raw text."""

    column: str
    value: str
    bad: str
    raw: str
    missing: str


def _raw_text(col: str | None, typ: str | None) -> str:
    """The column as text, null markers NOT removed (the aggregation normalizes its few
    result rows instead of every input row; see :func:`is_null_text`)."""
    if col is None:
        return "CAST(NULL AS VARCHAR)"
    if typ is not None and typ.startswith("VARCHAR"):
        return ident(col)
    return f"CAST({ident(col)} AS VARCHAR)"


def null_text_sql(expr: str) -> str:
    """SQL true when ``expr`` is null or a null marker (``''``, ``NULL``, ``null``)."""
    return f"({expr} IS NULL OR {expr} IN ('', 'NULL', 'null'))"


def _text_expr(col: str | None, typ: str | None) -> str:
    if col is None:
        return "CAST(NULL AS VARCHAR)"
    c = ident(col)
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
    c = ident(col)
    raw = _text_expr(col, typ)
    if typ.startswith("DATE"):
        return _Field(column, f"epoch_us(CAST({c} AS TIMESTAMP))", "false", raw, f"{c} IS NULL")
    if typ.startswith(_TIMESTAMP_TYPES):
        return _Field(column, f"epoch_us({c})", "false", raw, f"{c} IS NULL")
    if typ.startswith("VARCHAR"):
        # naive texts are read in the session zone, which _connect pins to UTC
        text = f"trim({raw})"
        value = (
            f"CASE WHEN regexp_full_match({text}, {lit(_ISO_TIMESTAMP)}) "
            f"THEN epoch_us(TRY_CAST(replace({text}, 'UTC', 'Z') AS TIMESTAMPTZ)) END"
        )
        bad = f"({raw} IS NOT NULL AND ({value}) IS NULL)"
        return _Field(column, value, bad, raw, f"{raw} IS NULL")
    raise SchemaError(f"column {col} has type {typ}; FOCUS needs an ISO 8601 date/time")


def _cost_field(column: str, col: str | None, typ: str | None) -> _Field:
    if col is None or typ is None:
        return _Field(column, "CAST(NULL AS DOUBLE)", "false", "CAST(NULL AS VARCHAR)", "true")
    c = ident(col)
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
    c = ident(col)
    if typ.startswith("MAP") or typ.startswith("STRUCT"):
        # Parquet exports (AWS) write Tags as map<string,string>: read it as JSON text
        value = f"CAST(to_json({c}) AS VARCHAR)"
        return _Field("Tags", value, "false", value, f"{c} IS NULL")
    raw = _text_expr(col, typ)
    bad = f"({raw} IS NOT NULL AND NOT json_valid({raw}))"
    return _Field("Tags", raw, bad, raw, f"{raw} IS NULL")


#: columns the validation pass checks on every row (Tags only when a query reads tags)
CHECKED = (
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
)


def reader(paths: Sequence[Path], fmt: str) -> str:
    """The DuckDB table function reading ``paths`` (one format) as one relation by name."""
    listing = "[" + ", ".join(lit(str(p)) for p in paths) + "]"
    if fmt == "csv":
        return (
            f"read_csv({listing}, header = true, all_varchar = true, union_by_name = true, "
            f"filename = true, nullstr = ['NULL', 'null', ''])"
        )
    return f"read_parquet({listing}, union_by_name = true, filename = true, file_row_number = true)"


def projection(paths: Sequence[Path], fmt: str, types: Mapping[str, str]) -> str:
    """SELECT of the normalized columns over the union of ``paths`` (one format).

    ``types`` are the column types of that union (``DESCRIBE`` of :func:`reader`).
    """
    # CSV rows are found again by value when needed (find_csv_row); Parquet knows its row
    row = "CAST(NULL AS BIGINT)" if fmt == "csv" else "file_row_number + 1"
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
            f"{fld.value} AS {ident(name)}",
            f"{fld.bad} AS {ident(name + '_bad')}",
            f"{fld.raw} AS {ident(name + '_raw')}",
            f"{fld.missing} AS {ident(name + '_missing')}",
        ]
    parts += [
        f"{currency} AS BillingCurrency",
        "false AS BillingCurrency_bad",
        f"{currency} AS BillingCurrency_raw",
        f"({currency}) IS NULL AS BillingCurrency_missing",
    ]
    parts.append(f"{_raw_text(*col('BillingCurrency'))} AS _cur")
    for dim, focus_col in DIMENSION_COLUMNS.items():
        parts.append(f"{_raw_text(*col(focus_col))} AS {ident('_dim_' + dim)}")
    return f"SELECT {', '.join(parts)} FROM {reader(paths, fmt)}"
