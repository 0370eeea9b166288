"""What `obsdash doctor` asks the store: the latest runs, each process's start and latest counters, ingest losses.

A process's counters are cumulative (see health.py): its latest `stats` or `end` record holds all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, as_dict, fetch
from obsdash.store.queries.health import add_counts

MAX_PROCESSES = 500
"""Processes read per run: a `gunicorn -w 4` run that recycled its workers all day has a few hundred."""
MAX_BAD_SEGMENTS = 5


@dataclass(frozen=True)
class RunInfo:
    """One `obsdash wrap` invocation (the `runs` view)."""

    run_id: str
    command: str | None
    service_name: str | None
    processes: int
    started: datetime | None
    ended: datetime | None
    """When the root process ended; None while it runs, or when it died without an end record."""
    exit_code: int | None


@dataclass(frozen=True)
class ProcessInfo:
    """One process of a run: how it started and what it counted last."""

    pid: int
    is_root: bool
    parent_pid: int | None
    started: datetime | None
    startup_ms: float | None
    last_report: datetime | None
    """Time of its latest stats or end record (None: it never reported counters)."""
    ended: bool
    exit_code: int | None
    instrumentation: dict[str, str] = field(default_factory=dict)
    instrumentation_ms: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    internal_errors: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestTotals:
    """Segments in the store, and the lines ingest could not read."""

    segments: int
    bad_lines: int
    bad_segments: list[tuple[str, int]]
    """The latest segments with bad lines: (name, bad lines)."""


RUN_COLUMNS = "run_id, command, service_name, processes, started, ended, exit_code"


def latest_runs(reader: Reader, limit: int) -> list[RunInfo]:
    """The `limit` runs that started last, newest first."""
    rows = fetch(
        reader,
        f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started DESC NULLS LAST, run_id DESC LIMIT ?",
        [limit],
        max_rows=limit,
    )
    return [_run(row) for row in rows]


def find_run(reader: Reader, run_id: str) -> RunInfo | None:
    """The run with this id, or None."""
    rows = fetch(reader, f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", [run_id], max_rows=1)
    return _run(rows[0]) if rows else None


def _run(row: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=str(row["run_id"]),
        command=row["command"],
        service_name=row["service_name"],
        processes=int(row["processes"] or 0),
        started=row["started"],
        ended=row["ended"],
        exit_code=row["exit_code"],
    )


PROCESSES_SQL = """
SELECT pid,
       bool_or(is_root) AS is_root,
       arg_min(parent_pid, time) FILTER (WHERE event = 'start') AS parent_pid,
       min(time) FILTER (WHERE event = 'start') AS started,
       TRY_CAST(arg_min(details, time) FILTER (WHERE event = 'start')->>'$.startup_ms' AS DOUBLE) AS startup_ms,
       max(time) FILTER (WHERE event IN ('stats', 'end')) AS last_report,
       arg_max(details, time) FILTER (WHERE event IN ('stats', 'end')) AS counters,
       bool_or(event = 'end') AS ended,
       arg_max(exit_code, time) FILTER (WHERE event = 'end') AS exit_code
FROM run_events
WHERE run_id = ?
GROUP BY pid
ORDER BY started NULLS LAST, pid
"""


def run_processes(reader: Reader, run_id: str) -> list[ProcessInfo]:
    """Each process of a run, in the order they started (at most MAX_PROCESSES)."""
    return [_process(row) for row in fetch(reader, PROCESSES_SQL, [run_id], max_rows=MAX_PROCESSES)]


def _process(row: dict[str, Any]) -> ProcessInfo:
    counters = as_dict(row["counters"])
    dropped: dict[str, int] = {}
    written: dict[str, int] = {}
    errors: dict[str, int] = {}
    redactions: dict[str, int] = {}
    for total, key in ((dropped, "dropped"), (written, "written"), (errors, "internal_errors")):
        add_counts(total, counters.get(key))
    add_counts(redactions, counters.get("redactions"))
    return ProcessInfo(
        pid=int(row["pid"]),
        is_root=bool(row["is_root"]),
        parent_pid=row["parent_pid"],
        started=row["started"],
        startup_ms=row["startup_ms"],
        last_report=row["last_report"],
        ended=bool(row["ended"]),
        exit_code=row["exit_code"],
        instrumentation={k: str(v) for k, v in as_dict(counters.get("instrumentation")).items()},
        instrumentation_ms={
            k: float(v) for k, v in as_dict(counters.get("instrumentation_ms")).items() if _is_number(v)
        },
        dropped=dropped,
        written=written,
        internal_errors=errors,
        redactions=redactions,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def ingest_totals(reader: Reader) -> IngestTotals:
    """Segments ingested and bad lines skipped, over the whole store."""
    totals = fetch(
        reader, "SELECT count(*) AS segments, coalesce(sum(bad_lines), 0) AS bad FROM ingested_segments"
    )[0]
    bad = fetch(
        reader,
        "SELECT name, bad_lines FROM ingested_segments WHERE bad_lines > 0 ORDER BY ingested_at DESC LIMIT ?",
        [MAX_BAD_SEGMENTS],
        max_rows=MAX_BAD_SEGMENTS,
    )
    return IngestTotals(
        segments=int(totals["segments"]),
        bad_lines=int(totals["bad"]),
        bad_segments=[(str(row["name"]), int(row["bad_lines"])) for row in bad],
    )
