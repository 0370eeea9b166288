"""Printing query results for `obsdash query`: an aligned table, JSON (a list of objects) or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from typing import Any

import orjson

from obsdash.store.results import QueryResult

MAX_CELL = 80


# C1 controls too: some terminals read 0x9b as ESC [.
_CONTROLS = {i: f"\\x{i:02x}" for i in (*range(32), 127, *range(0x80, 0xA0)) if i not in (9, 10)}


def printable(text: str) -> str:
    """`text` with its control characters shown escaped (tabs and newlines kept): a stored value such as
    `ESC [2J` must not clear, recolour or move the cursor of the terminal that shows it (R7 fuzzing)."""
    return text.translate(_CONTROLS)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    text = printable(str(value)[: MAX_CELL * 4]).replace("\n", "⏎").replace("\t", " ")
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
    try:
        return orjson.dumps(result.records(), default=_json_default, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers (a HUGEINT sum past them, R7 fuzzing); the standard library writes
        # any integer. NaN and infinity become null, as orjson writes them.
        return json.dumps(_finite(result.records()), default=_json_default, indent=2, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def as_csv(result: QueryResult) -> str:
    """CSV with a header row; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row])
    return buffer.getvalue().rstrip("\n")


FORMATTERS = {"table": as_table, "json": as_json, "csv": as_csv}
