"""Printing query results for `obsdash query`: an aligned table, JSON (a list of objects) or CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

import orjson

from obsdash.store.results import QueryResult

MAX_CELL = 80


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value).replace("\n", "⏎")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def as_table(result: QueryResult) -> str:
    """Columns aligned with their header; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(result.columns)]
    numeric = [_is_number_type(t) for t in result.types]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(result.columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    out.append(
        f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{', truncated' if result.truncated else ''})"
    )
    return "\n".join(out)


def _is_number_type(type_name: str) -> bool:
    return type_name.split("(", maxsplit=1)[0] in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def as_json(result: QueryResult) -> str:
    """A JSON list of objects, one per row."""
    return orjson.dumps(result.records(), default=_json_default, option=orjson.OPT_INDENT_2).decode()


def as_csv(result: QueryResult) -> str:
    """CSV with a header row; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row])
    return buffer.getvalue().rstrip("\n")


FORMATTERS = {"table": as_table, "json": as_json, "csv": as_csv}
