"""The rule for user SQL (`obsdash query`, the TUI's SQL prompt, MCP): one read-only statement.

Three layers (S5): only SELECT-like statements pass this check; they run inside a transaction that is always
rolled back; and the database itself refuses files outside the data directory, ATTACH and extensions
(see database.py).
"""

from __future__ import annotations

from typing import Any

import duckdb

from obsdash.errors import QueryRefused

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_read_only(conn: Any, sql: str) -> None:
    """Raise QueryRefused unless `sql` is exactly one read-only statement."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"SQL error: {first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryRefused(
            f"expected one SQL statement, got {len(statements)}", hint="run statements one at a time"
        )
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise QueryRefused(
            f"{kind.name} statements are not allowed: queries are read-only",
            hint="use SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN",
        )


def first_line(exc: BaseException) -> str:
    """The first line of a DuckDB error, which says what is wrong."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
