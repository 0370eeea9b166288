"""What obsdash lost or left out: bad spool lines, records the app dropped, instrumentors skipped or failed.

Each process reports its counters in `stats` run records while it runs (every ~5 s when one changed) and in its
`end` record. The counters are cumulative since the process started, so per process (run_id, pid) only the latest
of these records counts; adding them up would count a drop once per report. A window shows the processes that
reported within it, with everything they counted since they started. Bad lines are counted by the hub at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from obsdash.store.queries import Reader, as_dict, fetch

MAX_PROCESSES = 1000
"""Processes read per refresh: a `gunicorn -w 4` restarted every minute for a day is ~7000; the latest win."""

# The latest counters of each process that reported in the window (stats records while it runs, then its end).
LATEST_COUNTERS = """
SELECT run_id, pid, arg_max(event, time) AS event, max(time) AS time, arg_max(details, time) AS details
FROM run_events
WHERE event IN ('stats', 'end') AND time >= ?
GROUP BY run_id, pid
ORDER BY max(time) DESC
"""


@dataclass(frozen=True)
class Health:
    """Counts of what did not make it into the store, and why."""

    segments: int = 0
    bad_lines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """reason -> records the app side dropped (queue_full, disk_full, spool_write_error, after_close)."""
    not_instrumented: dict[str, str] = field(default_factory=dict)
    """library -> why it was skipped or failed."""
    internal_errors: int = 0
    redactions: dict[str, int] = field(default_factory=dict)
    """kind of secret -> values replaced before they reached the spool."""

    @property
    def lost(self) -> int:
        """Records that never reached the store."""
        return self.bad_lines + sum(self.dropped.values())


def add_counts(total: dict[str, int], counts: object) -> None:
    """Add a JSON object of name -> count into `total` (missing or malformed values count 0)."""
    for name, n in as_dict(counts).items():
        total[name] = total.get(name, 0) + _int(n)


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


def health(reader: Reader, since: datetime) -> Health:
    """Ingest and capture health: segments and bad lines overall; drops, instrumentation, internal errors and
    redactions of the processes that reported since `since`."""
    totals = fetch(
        reader, "SELECT count(*) AS segments, coalesce(sum(bad_lines), 0) AS bad FROM ingested_segments"
    )[0]
    rows = fetch(reader, LATEST_COUNTERS, [since], max_rows=MAX_PROCESSES)
    dropped: dict[str, int] = {}
    redactions: dict[str, int] = {}
    errors: dict[str, int] = {}
    not_instrumented: dict[str, str] = {}
    for row in rows:
        details = as_dict(row["details"])
        add_counts(dropped, details.get("dropped"))
        add_counts(redactions, details.get("redactions"))
        add_counts(errors, details.get("internal_errors"))
        for library, status in as_dict(details.get("instrumentation")).items():
            if status != "instrumented":
                not_instrumented.setdefault(library, str(status))
    return Health(
        segments=int(totals["segments"]),
        bad_lines=int(totals["bad"]),
        dropped=dropped,
        not_instrumented=not_instrumented,
        internal_errors=sum(errors.values()),
        redactions=redactions,
    )
