"""Spool segments on disk: finding them, and the slow, careful parse used when a segment is damaged.

The fast path hands whole segments to DuckDB's `read_json`. Only when that fails (a truncated or corrupt line,
a wrong type) does a segment come here to be read line by line, so that only its bad lines are lost — and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

KINDS = ("spans", "logs", "metrics", "runs")

# Fields a record must have, with their JSON types, for the record to be stored.
REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    "spans": {"trace_id": (str,), "span_id": (str,), "name": (str,), "start_ns": (int,), "end_ns": (int,)},
    "logs": {"time_ns": (int,)},
    "metrics": {"time_ns": (int,), "name": (str,)},
    "runs": {"event": (str,), "time_ns": (int,), "run_id": (str,)},
}
# Optional fields with a fixed JSON type: a record with another type there is bad.
TYPED: dict[str, tuple[type, ...]] = {
    "attributes": (dict,),
    "resource": (dict,),
    "events": (list,),
    "pid": (int,),
    "severity_number": (int,),
    "parent_span_id": (str,),
    "service_name": (str,),
    "run_id": (str,),
    "body": (str,),
}


@dataclass(frozen=True)
class Segment:
    """One segment file in the spool."""

    path: Path
    kind: str

    @property
    def name(self) -> str:
        return self.path.name


def kind_of(name: str) -> str | None:
    """The record kind of a segment file name, or None when the name is not a segment's."""
    if name.startswith(".") or not name.endswith(".jsonl"):
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


def is_valid_record(kind: str, record: Any) -> bool:
    """True when a parsed line has the fields and types its kind needs."""
    if not isinstance(record, dict):
        return False
    for field, types in REQUIRED[kind].items():
        value = record.get(field)
        if not isinstance(value, types) or isinstance(value, bool):
            return False
    for field, types in TYPED.items():
        value = record.get(field)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return False
    events = record.get("events")
    return not events or all(
        isinstance(e, dict) and isinstance(e.get("attributes", {}), dict) for e in events
    )


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
            if is_valid_record(segment.kind, record):
                good.append(orjson.dumps(record))
            else:
                bad += 1
    return good, bad
