"""Every query the dashboard and `obsdash tail` run, as typed functions returning plain data.

The UI never contains SQL: a screen calls one of these functions from a worker thread and renders what it returns.
Each function takes a `Reader` (an `obsdash.hub.client.Store`, wherever the hub is) and is bounded twice, by a time
window and by a row limit, because a 10k-row DataTable takes over a second to render and a store grows forever.
They never ask the hub to sync first: the hub's watcher ingests within ~15 ms of a segment landing, and a
dashboard refreshing several times a second must not list the spool each time.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from obsdash.store.results import QueryResult


class Reader(Protocol):
    """What a query function needs: read-only SQL with parameters (see `obsdash.hub.client.Store.query`)."""

    def query(
        self,
        sql: str,
        params: list[Any] | None = None,
        max_rows: int = ...,
        timeout_s: float = ...,
        sync: bool = ...,
    ) -> QueryResult: ...


def fetch(
    reader: Reader, sql: str, params: list[Any] | None = None, max_rows: int = 500
) -> list[dict[str, Any]]:
    """Run one dashboard query (no sync) and return its rows as dicts."""
    return reader.query(sql, params, max_rows=max_rows, sync=False).records()


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column's value as a dict ({} when missing or not an object)."""
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested ~1,000 deep (R7 fuzzing)
        return {}
    return parsed if isinstance(parsed, dict) else {}
