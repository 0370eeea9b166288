"""What obsdash lost or left out: bad spool lines, records the app dropped, instrumentors skipped or failed.

Drop counts and instrumentation status travel in each process's end record, so a process still running shows
them when it exits; bad lines are counted by the hub at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from obsdash.store.queries import Reader, as_dict, fetch

MAX_END_RECORDS = 1000


@dataclass(frozen=True)
class Health:
    """Counts of what did not make it into the store, and why."""

    segments: int = 0
    bad_lines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """reason -> records the app side dropped (queue_full, write_failed, ...)."""
    not_instrumented: dict[str, str] = field(default_factory=dict)
    """library -> why it was skipped or failed."""
    internal_errors: int = 0

    @property
    def lost(self) -> int:
        """Records that never reached the store."""
        return self.bad_lines + sum(self.dropped.values())


def health(reader: Reader, since: datetime) -> Health:
    """Ingest and capture health: segments and bad lines overall, drops and instrumentation since `since`."""
    totals = fetch(
        reader, "SELECT count(*) AS segments, coalesce(sum(bad_lines), 0) AS bad FROM ingested_segments"
    )[0]
    ends = fetch(
        reader,
        "SELECT details FROM run_events WHERE event = 'end' AND time >= ? ORDER BY time DESC",
        [since],
        max_rows=MAX_END_RECORDS,
    )
    dropped: dict[str, int] = {}
    not_instrumented: dict[str, str] = {}
    internal = 0
    for row in ends:
        details = as_dict(row["details"])
        for reason, count in as_dict(details.get("dropped")).items():
            dropped[reason] = dropped.get(reason, 0) + int(count or 0)
        for library, status in as_dict(details.get("instrumentation")).items():
            if status != "instrumented":
                not_instrumented.setdefault(library, str(status))
        internal += sum(int(n or 0) for n in as_dict(details.get("internal_errors")).values())
    return Health(int(totals["segments"]), int(totals["bad"]), dropped, not_instrumented, internal)
