"""Log lines: the newest in the window, filtered by level, service and text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, as_dict, fetch

LOG_COLUMNS = (
    "time, severity_text, severity_number, body, service_name, trace_id, span_id, attributes, scope, "
    "exception_type, exception_message, exception_stacktrace"
)
PAGE_ROWS = 500
LEVELS: dict[str, int] = {"all": 0, "debug": 5, "info": 9, "warn": 13, "error": 17}
"""Minimum OpenTelemetry severity number for each level filter."""


@dataclass(frozen=True)
class LogLine:
    """One log record."""

    time: datetime
    severity_text: str
    severity_number: int
    body: str
    service: str
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]
    logger: str
    exception_type: str | None
    exception_message: str | None
    stacktrace: str | None


def log_line(r: dict[str, Any]) -> LogLine:
    """A LogLine from a row of LOG_COLUMNS."""
    return LogLine(
        r["time"],
        r["severity_text"] or "",
        int(r["severity_number"] or 0),
        r["body"] or "",
        r["service_name"] or "?",
        r["trace_id"],
        r["span_id"],
        as_dict(r["attributes"]),
        r["scope"] or "",
        r["exception_type"],
        r["exception_message"],
        r["exception_stacktrace"],
    )


def recent_logs(
    reader: Reader,
    since: datetime,
    *,
    min_severity: int = 0,
    service: str | None = None,
    text: str = "",
    limit: int = PAGE_ROWS,
) -> list[LogLine]:
    """The newest `limit` log lines since `since` that pass the filters, newest first."""
    sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE time >= ? AND coalesce(severity_number, 0) >= ?"
    params: list[Any] = [since, min_severity]
    if service:
        sql += " AND service_name = ?"
        params.append(service)
    if text.strip():
        sql += " AND (body ILIKE ? OR exception_type ILIKE ? OR scope ILIKE ? OR trace_id ILIKE ?)"
        pattern = f"%{text.strip()}%"
        params += [pattern, pattern, pattern, f"{text.strip()}%"]
    sql += " ORDER BY time DESC LIMIT ?"
    rows = fetch(reader, sql, [*params, limit], max_rows=limit)
    return [log_line(r) for r in rows]


def log_services(reader: Reader, since: datetime) -> list[str]:
    """Services that logged since `since`."""
    rows = fetch(
        reader,
        "SELECT DISTINCT service_name AS s FROM logs WHERE time >= ? AND service_name IS NOT NULL ORDER BY 1",
        [since],
    )
    return [r["s"] for r in rows]
