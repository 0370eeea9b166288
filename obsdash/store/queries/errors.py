"""Exceptions grouped by fingerprint (exception type + location in the app's own code), from `errors_since`.

The table macro bounds its reads by the window (the `errors` view is the same rows over all time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from obsdash.store.queries import Reader, fetch


@dataclass(frozen=True)
class ErrorGroup:
    """One fingerprint: how often, since when, where, and an example to open."""

    fingerprint: str
    exception_type: str
    message: str
    location: str
    count: int
    first_seen: datetime
    last_seen: datetime
    routes: list[str]
    services: list[str]
    example_trace_id: str | None
    stacktrace: str


GROUPS_SQL = """
SELECT fingerprint, any_value(exception_type) AS exception_type,
       arg_max(message, time) AS message, any_value(location) AS location, count(*) AS n,
       min(time) AS first_seen, max(time) AS last_seen,
       list(DISTINCT route) FILTER (WHERE route IS NOT NULL) AS routes,
       list(DISTINCT service_name) AS services,
       arg_max(trace_id, time) FILTER (WHERE trace_id IS NOT NULL) AS example_trace_id,
       arg_max(stacktrace, time) AS stacktrace
FROM errors_since(CAST(? AS TIMESTAMP))
GROUP BY fingerprint ORDER BY last_seen DESC LIMIT ?
"""


def error_groups(reader: Reader, since: datetime, limit: int = 200) -> list[ErrorGroup]:
    """Fingerprints seen since `since`, most recent first."""
    rows = fetch(reader, GROUPS_SQL, [since, limit], max_rows=limit)
    return [
        ErrorGroup(
            fingerprint=row["fingerprint"],
            exception_type=row["exception_type"] or "?",
            message=row["message"] or "",
            location=row["location"] or "",
            count=int(row["n"]),
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            routes=sorted(row["routes"] or []),
            services=sorted(row["services"] or []),
            example_trace_id=row["example_trace_id"],
            stacktrace=row["stacktrace"] or "",
        )
        for row in rows
    ]
