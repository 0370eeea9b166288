"""The `exceptions` table: one narrow row per exception record, from span events and from log lines alike.

`errors_since` (schema.py) reads it instead of `span_events` and `logs`. Reading those for `all` at 10M spans
meant decoding the trace ids of every one of 3.6-4M log lines (DICT_FSST decodes whole vectors, however few rows
carry an exception) to find ~154k exception records.

It always holds exactly the rows of `span_events` and `logs` with an `exception_type`:
- ingest inserts a batch's exception records in the batch's own transaction (`ingest.INSERTS`);
- retention deletes by `time` with the other tables (`prune.TIME_COLUMNS`), at the same cuts;
- a store written before it existed is filled once at open (`backfill`, called by `schema.create`): 15.6k records
  of a 1M-span store in 0.1 s, 154k of a 10M-span store in 1.0-1.1 s (2.0 s over 240 h).

Measured (errors_since for `all` at 10M spans / 24 h under the hub's 320 MB cap, median of 3, a loaded 2-core box):
468-623 -> 299-399 ms wall, 0.83-0.98 -> 0.52-0.54 s CPU, peak buffer memory 305 -> ~200 MiB. Most of what is
left is the route lookup: the trace ids of every root span decoded to find the ~94k roots of failed traces.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

VERSION = "1"
"""Stored as `exceptions_version` in `obsdash_meta`; a store with another value (or none) is backfilled at open."""

SPAN_EVENT, LOG = 0, 1
"""`source_rank`: of the records of one exception, a span event's wins over a log line's."""

TABLE = """
CREATE TABLE IF NOT EXISTS exceptions (
    time TIMESTAMP, trace_id VARCHAR, span_id VARCHAR, service_name VARCHAR, run_id VARCHAR,
    source_rank TINYINT, exception_type VARCHAR, exception_message VARCHAR, exception_stacktrace VARCHAR,
    exception_location VARCHAR
);
"""
COLUMNS = (
    "time, trace_id, span_id, service_name, run_id, source_rank, exception_type, exception_message, "
    "exception_stacktrace, exception_location"
)
_LEADING = "time, trace_id, span_id, service_name, run_id"
_EXCEPTION = "exception_type, exception_message, exception_stacktrace, exception_location"

FROM_STORED = f"""
INSERT INTO exceptions ({COLUMNS})
SELECT {_LEADING}, {SPAN_EVENT}, {_EXCEPTION} FROM span_events WHERE exception_type IS NOT NULL
UNION ALL
SELECT {_LEADING}, {LOG}, {_EXCEPTION} FROM logs WHERE exception_type IS NOT NULL
"""
"""Every stored exception record, as ingest would have inserted it."""


def backfill(conn: Any) -> float | None:
    """Fill the table from the stored span events and logs when it is missing or of another version (a store
    written before it existed); the seconds it took, or None when it was up to date."""
    row = conn.execute("SELECT value FROM obsdash_meta WHERE key = 'exceptions_version'").fetchone()
    if row and row[0] == VERSION:
        return None
    seconds, rows = rebuild(conn)
    if rows:
        log.warning("obsdash: indexed the %d stored exception records in %.1f s (once)", rows, seconds)
    return seconds


def rebuild(conn: Any) -> tuple[float, int]:
    """Replace the table's rows with every stored exception record, in one transaction; (seconds, rows)."""
    started = time.perf_counter()
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM exceptions")
        (rows,) = conn.execute(FROM_STORED).fetchone()
        conn.execute("INSERT OR REPLACE INTO obsdash_meta VALUES ('exceptions_version', ?)", [VERSION])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return time.perf_counter() - started, int(rows)
