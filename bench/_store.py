"""Read back what a wrapped benchmark run stored: the honesty checks of P1–P3 (spans really produced, drops).

Imports obsdash (and so duckdb) only when called, so the harness modules stay cheap to import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def store_rows(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Ingest everything the spool holds, then run `sql` on the store (this process hosts the hub briefly)."""
    from obsdash.datadir import DataDir
    from obsdash.hub.client import open_store

    store = open_store(DataDir(data_dir))
    try:
        store.sync()
        return [tuple(row) for row in store.query(sql, params or [], max_rows=100_000, sync=False).rows]
    finally:
        store.close()


def end_records(data_dir: Path) -> list[dict[str, Any]]:
    """The `end` run records of every process: written/dropped counts per kind, exit code, instrumentation."""
    rows = store_rows(data_dir, "SELECT pid, exit_code, details FROM run_events WHERE event = 'end'")
    found = []
    for pid, exit_code, details in rows:
        parsed = json.loads(details) if isinstance(details, str) else dict(details or {})
        found.append({"pid": pid, "exit_code": exit_code, **parsed})
    return found


def dropped_total(ends: list[dict[str, Any]]) -> dict[str, int]:
    """Drop counters summed over processes, by reason."""
    total: dict[str, int] = {}
    for end in ends:
        for reason, count in (end.get("dropped") or {}).items():
            total[reason] = total.get(reason, 0) + int(count)
    return total
