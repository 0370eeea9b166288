"""Write realistic spool segments directly, as the in-app side would (for hub and ingest tests)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from obsdash.store.queries.window import utc_now


def span_line(i: int, trace: int, run_id: str = "test-run") -> bytes:
    """One root span record in the spool format."""
    start = time.time_ns() - 1_000_000
    return orjson.dumps(
        {
            "trace_id": f"{trace:032x}",
            "span_id": f"{i + 1:016x}",
            "parent_span_id": None,
            "name": "GET /x",
            "kind": "SERVER",
            "start_ns": start,
            "end_ns": start + 500_000,
            "status_code": "UNSET",
            "status_message": None,
            "attributes": {"http.route": "/x", "http.response.status_code": 200},
            "events": [],
            "scope": "test",
            "service_name": "gen",
            "run_id": run_id,
            "pid": 1,
            "resource": {},
        }
    )


def write_segments(spool: Path, segments: int, spans_per_segment: int) -> int:
    """Write `segments` span segments into `spool` (ids unique across calls); returns how many spans."""
    spool.mkdir(parents=True, exist_ok=True)
    n = int.from_bytes(os.urandom(5), "big") * 1_000_000
    first = n
    for s in range(segments):
        lines = [span_line(n + i, trace=n + i + 1) for i in range(spans_per_segment)]
        n += spans_per_segment
        name = f"spans-{time.time_ns():020d}-{os.getpid()}-{s:06d}.jsonl"
        (spool / name).write_bytes(b"\n".join(lines) + b"\n")
    return n - first


EPOCH = datetime(1970, 1, 1)


def ns(t: datetime) -> int:
    """A naive UTC datetime as epoch nanoseconds (whole microseconds), as records carry time."""
    return int((t - EPOCH).total_seconds() * 1_000_000) * 1000


def write_records(spool: Path, kind: str, records: list[dict[str, Any]], seq: int) -> None:
    """One segment of `kind` holding `records` (dicts), named as the app names them; `seq` keeps names apart."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{kind}-{ns(utc_now()) + seq:020d}-7-{seq:06d}.jsonl"
    (spool / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
