"""What the store holds, for readers that describe it or accept short ids: its tables and views with their
columns, and the trace ids that start with a given prefix.

The columns come from the store itself (information_schema), so a description built from them can never drift
from schema.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsdash.store.queries import Reader, fetch

MAX_MATCHES = 5


@dataclass(frozen=True)
class Table:
    """A table or view: its name, `table` or `view`, and its (column, type) pairs in order."""

    name: str
    kind: str
    columns: list[tuple[str, str]]


TABLES_SQL = """
SELECT c.table_name AS name, CASE WHEN t.table_type = 'VIEW' THEN 'view' ELSE 'table' END AS kind,
       list(c.column_name ORDER BY c.ordinal_position) AS columns,
       list(c.data_type ORDER BY c.ordinal_position) AS types
FROM information_schema.columns c JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
WHERE c.table_schema = 'main'
GROUP BY ALL ORDER BY kind, name
"""


def store_tables(reader: Reader) -> list[Table]:
    """Every table and view of the store, tables first, each group by name."""
    return [
        Table(row["name"], row["kind"], list(zip(row["columns"], row["types"], strict=True)))
        for row in fetch(reader, TABLES_SQL, max_rows=200)
    ]


def trace_ids_with_prefix(reader: Reader, prefix: str, limit: int = MAX_MATCHES) -> list[str]:
    """Up to `limit` distinct trace ids starting with `prefix` (lower-case hex), in no particular order.

    Either reads the trace_id column of every span (spans have no index on it: docs/benchmarks.md P4; ~65 ms
    at 10M spans), so a short id is worth it only where a person or a model typed one.
    """
    prefix = prefix.strip().lower()
    if len(prefix) == 32:
        rows = fetch(reader, "SELECT trace_id FROM spans WHERE trace_id = ? LIMIT 1", [prefix], max_rows=1)
    else:
        rows = fetch(
            reader,
            "SELECT DISTINCT trace_id FROM spans WHERE starts_with(trace_id, ?) LIMIT ?",
            [prefix, limit],
            max_rows=limit,
        )
    return [row["trace_id"] for row in rows]
