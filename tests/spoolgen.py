"""Write realistic spool segments directly, as the in-app side would (for hub and ingest tests)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson


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
