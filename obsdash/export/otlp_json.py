"""OTLP/JSON files: traces.jsonl, logs.jsonl, metrics.jsonl — a bundle to attach to a bug report.

The layout is the OpenTelemetry file exporter's (specification "OTLP File Exporter"): JSON Lines, each line one
ExportTraceServiceRequest / ExportLogsServiceRequest / ExportMetricsServiceRequest in the OTLP JSON encoding, so
the OpenTelemetry Collector's `otlpjsonfile` receiver can replay a bundle, and a line can be POSTed as it is to
any OTLP/HTTP endpoint with `Content-Type: application/json`. One line per page of the store (PAGE_ROWS records),
so a file of any size is written and read line by line.

The OTLP JSON encoding is protobuf's JSON mapping with lowerCamelCase names and int64 as strings (what
`json_format` writes), plus two rules of OTLP's own: enums as integers, and trace and span ids as hex, not base64.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

FILES = {"spans": "traces.jsonl", "logs": "logs.jsonl", "metric_points": "metrics.jsonl"}
_ID_FIELDS = frozenset(("traceId", "spanId", "parentSpanId"))


def to_json(message: Message) -> dict[str, Any]:
    """An OTLP request message in the OTLP JSON encoding."""
    data: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    _hex_ids(data)
    return data


def _hex_ids(value: Any) -> None:
    """Ids from protobuf JSON's base64 to OTLP JSON's hex, in place, at any depth (spans, links, logs, exemplars)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                value[key] = base64.b64decode(item).hex()
            else:
                _hex_ids(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids(item)


class PrivateFile:
    """A file written as `.<name>.<pid>.tmp`, created 0600, moved into place by `commit` (a reader never sees half
    of it, and no other user can read it at any moment)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.temporary.unlink(missing_ok=True)
        self.handle = os.fdopen(os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.size = 0

    def write_request(self, message: Message) -> None:
        """Append one OTLP request as a line."""
        line = orjson.dumps(to_json(message)) + b"\n"
        self.handle.write(line)
        self.size += len(line)

    def commit(self) -> None:
        """Close and move into place."""
        self.handle.close()
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        """Close and remove (an export that failed half way)."""
        self.handle.close()
        self.temporary.unlink(missing_ok=True)
