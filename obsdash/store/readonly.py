"""The rule for user SQL (`obsdash query`, the TUI's SQL prompt, MCP): one read-only statement.

Three layers (S5): only SELECT-like statements pass this check — an EXPLAIN only of one, and no table function
that changes state; they run inside a READ ONLY transaction that is always rolled back (hub/server.py); and the
database itself refuses files outside the data directory, ATTACH and extensions (see database.py).
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import orjson

from obsdash.errors import QueryRefused

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_HINT = "use SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"
# Table functions a SELECT can call that act instead of read (tests/security/test_readonly_query.py):
# `SELECT * FROM checkpoint()` rewrote the database file even in a read-only transaction, query() and
# json_execute_serialized_sql() run SQL this check never sees, read_duckdb() opens another database as ATTACH
# would, and the rest change settings, logs or reach into the Python process.
_ACTING_FUNCTIONS = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "query",
        "json_execute_serialized_sql",
        "read_duckdb",
        "truncate_duckdb_logs",
        "enable_logging",
        "disable_logging",
        "enable_profiling",
        "disable_profiling",
        "add_grammar_extension",
        "remove_grammar_extension",
        "create_external_resource",
        "deregister_external_resource",
        "destroy_external_resource",
        "register_external_resource",
        "register_external_resource_type",
        "arrow_scan",
        "arrow_scan_dumb",
        "python_arrow_scan",
        "pandas_scan",
        "python_map_function",
    }
)


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
        raise QueryRefused(f"{kind.name} statements are not allowed: queries are read-only", hint=_HINT)
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement: `EXPLAIN ANALYZE COPY ... TO` wrote a file
        check_read_only(conn, _explained(statements[0].query))
        return
    _refuse_acting_functions(conn, statements[0].query)


def _explained(text: str) -> str:
    """The statement an `EXPLAIN [ANALYZE] [(options)] statement` shows."""
    tokens = duckdb.tokenize(text)
    ends = [position for position, _ in tokens[1:]] + [len(text)]
    depth = 0
    for (position, token), end in list(zip(tokens, ends, strict=True))[1:]:
        word = text[position:end].strip().upper()
        if token == duckdb.token_type.comment:
            continue
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word not in ("ANALYZE", "ANALYSE"):
            return text[position:]
    return ""


_MENTIONS_ACTING = re.compile(r"\b(" + "|".join(sorted(_ACTING_FUNCTIONS)) + r")\b", re.IGNORECASE)


def _refuse_acting_functions(conn: Any, sql: str) -> None:
    """Refuse a SELECT that calls one of _ACTING_FUNCTIONS anywhere (a CTE, a subquery, a join)."""
    if not _MENTIONS_ACTING.search(sql):
        return  # the parse below costs 0.4-6 ms; the dashboard's own queries name none of these
    try:
        tree = orjson.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    except duckdb.Error:
        return  # the statement itself will fail with DuckDB's own message
    except orjson.JSONDecodeError:
        raise QueryRefused("the query is nested too deeply to check", hint="simplify it") from None
    if tree.get("error"):  # DESCRIBE / SHOW / SUMMARIZE: nothing to look into; the other layers still hold
        return
    for name in _table_functions(tree):
        if name.lower() in _ACTING_FUNCTIONS:
            raise QueryRefused(f"{name}() is not allowed: queries are read-only", hint=_HINT)


def _table_functions(node: Any) -> list[str]:
    """The names of the table functions a serialized statement calls."""
    found: list[str] = []
    stack = [node]
    while stack:  # iterative: a deeply nested query must not hit Python's recursion limit
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "TABLE_FUNCTION" and isinstance(item.get("function"), dict):
                found.append(str(item["function"].get("function_name", "")))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def first_line(exc: BaseException) -> str:
    """The first line of a DuckDB error, which says what is wrong."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
