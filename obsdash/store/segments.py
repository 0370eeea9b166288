"""Spool segments on disk: finding them, and the slow, careful parse used when a segment is damaged.

The fast path hands whole segments to DuckDB's `read_json`. Only when that fails (a truncated or corrupt line,
a wrong type) does a segment come here to be read line by line, so that only its bad lines are lost — and counted.
A line passes here only when every field has a type (and range) DuckDB will load: the salvaged lines are loaded
in one transaction, so one line let through that DuckDB then refuses would cost the whole segment.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

KINDS = ("spans", "logs", "metrics", "runs")

EVENTS = "STRUCT(name VARCHAR, time_ns BIGINT, attributes JSON)[]"
_COMMON = {"service_name": "VARCHAR", "run_id": "VARCHAR", "pid": "INTEGER", "resource": "JSON"}
# The fields of each kind with the DuckDB type `read_json` reads them as (ingest.py builds its schema from this).
# pid and parent_pid are INTEGER because the tables store them so: read as BIGINT, a pid over 2^31 failed the
# INSERT after read_json had accepted it.
COLUMNS: dict[str, dict[str, str]] = {
    "spans": {
        "trace_id": "VARCHAR",
        "span_id": "VARCHAR",
        "parent_span_id": "VARCHAR",
        "parent_remote": "BOOLEAN",
        "name": "VARCHAR",
        "kind": "VARCHAR",
        "start_ns": "BIGINT",
        "end_ns": "BIGINT",
        "status_code": "VARCHAR",
        "status_message": "VARCHAR",
        "attributes": "JSON",
        "events": EVENTS,
        "scope": "VARCHAR",
        **_COMMON,
    },
    "logs": {
        "time_ns": "BIGINT",
        "severity_text": "VARCHAR",
        "severity_number": "INTEGER",
        "body": "VARCHAR",
        "trace_id": "VARCHAR",
        "span_id": "VARCHAR",
        "attributes": "JSON",
        "scope": "VARCHAR",
        **_COMMON,
    },
    "metrics": {
        "time_ns": "BIGINT",
        "start_ns": "BIGINT",
        "name": "VARCHAR",
        "unit": "VARCHAR",
        "kind": "VARCHAR",
        "value": "DOUBLE",
        "count": "BIGINT",
        "sum": "DOUBLE",
        "min": "DOUBLE",
        "max": "DOUBLE",
        "bucket_counts": "JSON",
        "explicit_bounds": "JSON",
        "attributes": "JSON",
        **_COMMON,
    },
    "runs": {
        "event": "VARCHAR",
        "time_ns": "BIGINT",
        "run_id": "VARCHAR",
        "pid": "INTEGER",
        "service_name": "VARCHAR",
        "host": "VARCHAR",
        "root": "BOOLEAN",
        "parent_pid": "INTEGER",
        "command": "VARCHAR",
        "exit_code": "INTEGER",
        "argv": "JSON",
        "startup_ms": "DOUBLE",
        "duration_ms": "DOUBLE",
        "instrumentation": "JSON",
        "instrumentation_ms": "JSON",
        "dropped": "JSON",
        "written": "JSON",
        "internal_errors": "JSON",
        "redactions": "JSON",
        "otlp": "JSON",
    },
}
# Fields a record must have (not null) to be stored.
REQUIRED: dict[str, tuple[str, ...]] = {
    "spans": ("trace_id", "span_id", "name", "start_ns", "end_ns"),
    "logs": ("time_ns",),
    "metrics": ("time_ns", "name"),
    "runs": ("event", "time_ns", "run_id"),
}
# JSON fields that must hold an object: the dashboard reads attributes and resources as maps.
OBJECTS = ("attributes", "resource")
_INT_BITS = {"BIGINT": 63, "INTEGER": 31}
_INT64 = 1 << 63


def _fits(column_type: str, value: Any) -> bool:
    """True when DuckDB can load `value` (parsed JSON) into a column of `column_type`; None always fits."""
    if value is None or column_type == "JSON":
        return True
    if isinstance(value, bool):  # bool is an int in Python, not in DuckDB
        return column_type == "BOOLEAN"
    if column_type == "VARCHAR":
        return isinstance(value, str)
    if column_type in _INT_BITS:
        limit = 1 << _INT_BITS[column_type]
        return isinstance(value, int) and -limit <= value < limit
    if column_type == "DOUBLE":
        return isinstance(value, float | int)
    if column_type == EVENTS:
        return isinstance(value, list) and all(_is_event(event) for event in value)
    return False  # BOOLEAN given a non-bool


def _is_event(event: Any) -> bool:
    if event is None:
        return True
    return (
        isinstance(event, dict)
        and _fits("VARCHAR", event.get("name"))
        and _fits("BIGINT", event.get("time_ns"))
        and isinstance(event.get("attributes", {}), dict | None)
    )


@dataclass(frozen=True)
class Segment:
    """One segment file in the spool."""

    path: Path
    kind: str

    @property
    def name(self) -> str:
        return self.path.name


_GLOB_CHARACTERS = frozenset("*?[]{}")


def kind_of(name: str) -> str | None:
    """The record kind of a segment file name, or None when the name is not a segment's."""
    if name.startswith(".") or not name.endswith(".jsonl"):
        return None
    if not _GLOB_CHARACTERS.isdisjoint(name):
        # read_json expands each path as a glob: `spans-*.jsonl` would read every span segment again (stored
        # twice). The app's names never hold these characters.
        return None
    kind = name.split("-", 1)[0]
    return kind if kind in KINDS else None


def list_segments(spool: Path) -> list[Segment]:
    """Every segment waiting in the spool, oldest first (names start with the write time)."""
    try:
        entries = [entry.name for entry in os.scandir(spool) if entry.is_file()]
    except FileNotFoundError:
        return []
    found = [Segment(spool / name, kind) for name in entries if (kind := kind_of(name))]
    return sorted(found, key=lambda s: s.name.split("-", 1)[1])


STALE_TEMPORARY_S = 600.0
"""A writer renames its hidden temp file within milliseconds; one this old belongs to a killed app (R6)."""


def remove_stale_temporaries(spool: Path, older_than_s: float = STALE_TEMPORARY_S) -> int:
    """Delete the hidden `.<segment>.tmp` files a killed writer left behind; returns how many went."""
    removed = 0
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(spool))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            continue
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def is_valid_record(kind: str, record: Any) -> bool:
    """True when a parsed line has the fields its kind needs, each of a type and range DuckDB loads."""
    if not isinstance(record, dict):
        return False
    if any(record.get(field) is None for field in REQUIRED[kind]):
        return False
    columns = COLUMNS[kind]
    if not all(_fits(column_type, record.get(field)) for field, column_type in columns.items()):
        return False
    if any(not isinstance(record.get(field, {}), dict | None) for field in OBJECTS):
        return False
    if kind == "spans":
        # the duration is end_ns - start_ns in BIGINT: an overflow there failed the whole batch
        return bool(-_INT64 <= record["end_ns"] - record["start_ns"] < _INT64)
    return True


def _stored_fields(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record cut to the fields ingest reads: anything else (odd keys, deep values in them) is dropped."""
    kept = {field: record[field] for field in COLUMNS[kind] if field in record}
    if kept.get("events"):
        kept["events"] = [
            None if event is None else {k: event[k] for k in ("name", "time_ns", "attributes") if k in event}
            for event in kept["events"]
        ]
    return kept


def salvage(segment: Segment) -> tuple[list[bytes], int]:
    """The good lines of a damaged segment (re-encoded) and how many lines were bad."""
    good: list[bytes] = []
    bad = 0
    with open(segment.path, "rb") as handle:
        for raw in handle:
            line = raw.strip()
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                bad += 1
                continue
            if not is_valid_record(segment.kind, record):
                bad += 1
                continue
            try:
                good.append(orjson.dumps(_stored_fields(segment.kind, record)))
            except orjson.JSONEncodeError:
                # orjson reads 1024 levels of nesting but writes only 254: a deeper value is a bad line here
                # (the fast path, reading the file as it is, stores it)
                bad += 1
    return good, bad
