"""Request bodies → OTLP requests: the generated `opentelemetry-proto` message, or a view of OTLP/JSON.

Protobuf is parsed by the generated classes (upb). OTLP/JSON is read through `jsonview.JsonView`, which answers
like the message (jsonview.py says why not `json_format`). Anything that does not parse raises `BadRequest`,
which the intake answers with 400.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from obsdash.otlp.jsonview import JsonView

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}


class BadRequest(ValueError):
    """The body is not a valid OTLP request of the declared type."""


def parse(signal: str, body: bytes | bytearray, content_type: str) -> Any:
    """The OTLP request in `body` (`signal`: traces, metrics or logs; `content_type`: PROTOBUF or JSON)."""
    message = REQUESTS[signal]()
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise BadRequest(f"not a valid protobuf {type(message).__name__}: {exc}") from None
        return message
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"an OTLP/JSON request is an object, not {type(document).__name__}")
    return JsonView(message.DESCRIPTOR, document)


def encode(message: Message, content_type: str) -> bytes:
    """A response message in the request's encoding (OTLP/HTTP answers in the type it was sent)."""
    if content_type == PROTOBUF:
        return bytes(message.SerializeToString())
    return str(json_format.MessageToJson(message, indent=None)).encode()


def status_body(code: int, message: str, content_type: str) -> bytes:
    """A `google.rpc.Status` for an error answer, as OTLP/HTTP asks. Protobuf is encoded by hand (two fields:
    1 code, 2 message) rather than pulling in googleapis-common-protos for one message."""
    if content_type != PROTOBUF:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
