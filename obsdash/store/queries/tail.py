"""Queries behind `obsdash tail`: log lines and errors by time range, oldest first, and the key of each record.

`obsdash tail --follow` polls these and must never print a record twice nor skip one, while records arrive slightly
out of time order (every process flushes its own segment every 250 ms). So besides "the newest N" there are range
queries (`..._between`, `..._after`) and a cheap count, and `log_key` / `error_key` say what identifies a record.
Like every query module, nothing here asks the hub to sync, and every result is row-bounded.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.logs import LOG_COLUMNS, LogLine, log_line

ERROR_COLUMNS = "time, trace_id, span_id, service_name, exception_type, message, location, fingerprint, route"
RANGE_ROWS = 100_000
"""Cap on a range query; tail asks for a few seconds' worth, so reaching it means ~20k records/s."""


@dataclass(frozen=True)
class ErrorEvent:
    """One exception, as the `errors` view shows it (one row per exception, however often it was recorded)."""

    time: datetime
    trace_id: str | None
    span_id: str | None
    service: str
    exception_type: str
    message: str
    location: str
    fingerprint: str
    route: str | None


def error_event(r: dict[str, Any]) -> ErrorEvent:
    """An ErrorEvent from a row of ERROR_COLUMNS."""
    return ErrorEvent(
        r["time"],
        r["trace_id"],
        r["span_id"],
        r["service_name"] or "?",
        r["exception_type"] or "?",
        r["message"] or "",
        r["location"] or "",
        r["fingerprint"] or "",
        r["route"],
    )


def log_key(line: LogLine) -> Hashable:
    """What tells two log records apart (logs have no id): time, service, span and body."""
    return (line.time, line.service, line.span_id, line.body)


def error_key(event: ErrorEvent) -> Hashable:
    """The `errors` view's own partition: (trace, short type), else (time, span, short type).

    Not the row's time or span: when a span event arrives after the log record of the same exception, the view
    switches its row to the span event, and that must not read as a new error.
    """
    short_type = event.exception_type.rsplit(".", 1)[-1]
    if event.trace_id:
        return (event.trace_id, short_type)
    return (event.time, event.span_id, short_type)


ERRORS_SINCE = "errors_since(CAST(? AS TIMESTAMP))"
"""The `errors` rows from a time on, read only from there (the first parameter of a query using it)."""


def _select(
    reader: Reader,
    source: str,
    columns: str,
    condition: str,
    params: list[Any],
    *,
    service: str | None,
    order: str = "ASC",
    limit: int = RANGE_ROWS,
) -> list[dict[str, Any]]:
    sql = f"SELECT {columns} FROM {source} WHERE {condition}"
    if service is not None:
        sql += " AND service_name = ?"
        params = [*params, service]
    sql += f" ORDER BY time {order} LIMIT ?"
    return fetch(reader, sql, [*params, limit], max_rows=limit)


def _count(reader: Reader, source: str, since: datetime, until: datetime, service: str | None) -> int:
    sql = f"SELECT count(*) AS n FROM {source} WHERE time BETWEEN ? AND ?"
    params: list[Any] = [since, until]
    if service is not None:
        sql += " AND service_name = ?"
        params.append(service)
    return int(fetch(reader, sql, params, max_rows=1)[0]["n"])


def newest_logs(reader: Reader, since: datetime, limit: int, *, service: str | None = None) -> list[LogLine]:
    """The newest `limit` log lines at or after `since`, oldest first."""
    rows = _select(
        reader, "logs", LOG_COLUMNS, "time >= ?", [since], service=service, order="DESC", limit=limit
    )
    return [log_line(r) for r in reversed(rows)]


def logs_between(
    reader: Reader, since: datetime, until: datetime, *, service: str | None = None
) -> list[LogLine]:
    """Log lines with `since` <= time <= `until`, oldest first."""
    rows = _select(reader, "logs", LOG_COLUMNS, "time BETWEEN ? AND ?", [since, until], service=service)
    return [log_line(r) for r in rows]


def logs_after(reader: Reader, after: datetime, limit: int, *, service: str | None = None) -> list[LogLine]:
    """The first `limit` log lines strictly after `after`, oldest first."""
    rows = _select(reader, "logs", LOG_COLUMNS, "time > ?", [after], service=service, limit=limit)
    return [log_line(r) for r in rows]


def count_logs(reader: Reader, since: datetime, until: datetime, *, service: str | None = None) -> int:
    """How many log lines have `since` <= time <= `until` (logs are append-only, so an unchanged count over a
    range means nothing arrived in it)."""
    return _count(reader, "logs", since, until, service)


def newest_errors(
    reader: Reader, since: datetime, limit: int, *, service: str | None = None
) -> list[ErrorEvent]:
    """The newest `limit` exceptions at or after `since`, oldest first."""
    rows = _select(
        reader,
        ERRORS_SINCE,
        ERROR_COLUMNS,
        "time >= ?",
        [since, since],
        service=service,
        order="DESC",
        limit=limit,
    )
    return [error_event(r) for r in reversed(rows)]


def errors_between(
    reader: Reader, since: datetime, until: datetime, *, service: str | None = None
) -> list[ErrorEvent]:
    """Exceptions with `since` <= time <= `until`, oldest first."""
    rows = _select(
        reader, ERRORS_SINCE, ERROR_COLUMNS, "time BETWEEN ? AND ?", [since, since, until], service=service
    )
    return [error_event(r) for r in rows]


def errors_after(
    reader: Reader, after: datetime, limit: int, *, service: str | None = None
) -> list[ErrorEvent]:
    """The first `limit` exceptions strictly after `after`, oldest first."""
    rows = _select(
        reader, ERRORS_SINCE, ERROR_COLUMNS, "time > ?", [after, after], service=service, limit=limit
    )
    return [error_event(r) for r in rows]


def known_services(reader: Reader) -> list[str]:
    """Every service that has started a process under obsdash, as recorded in `run_events`."""
    rows = fetch(
        reader,
        "SELECT DISTINCT service_name AS s FROM run_events WHERE service_name IS NOT NULL ORDER BY 1",
        max_rows=1000,
    )
    return [r["s"] for r in rows]
