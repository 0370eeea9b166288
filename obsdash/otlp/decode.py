"""Request bodies → the generated OTLP request messages (`opentelemetry-proto`), protobuf or OTLP/JSON.

OTLP/JSON is proto3's JSON mapping with three differences (OTLP specification, "JSON Protobuf Encoding"):
trace and span ids are hex strings, not base64; enums are integers; unknown fields must be ignored.
`google.protobuf.json_format` reads enums as integers and can ignore unknown fields, but it decodes every bytes
field as base64 — and a 32-character hex trace id is valid base64, so it would silently become 24 wrong bytes. So
the ids are rewritten from hex to base64 before parsing (`_ids_to_base64`). Other bytes values (an AnyValue's
`bytesValue`) stay base64, as OTLP/JSON has them. int64 fields arrive as strings or numbers; both parse.

Anything that does not parse raises `BadRequest`, which the intake answers with 400.
"""

from __future__ import annotations

import base64
import binascii
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

# The JSON names (and proto names, which json_format accepts too) of every id field in the three requests:
# Span, Span.Link, LogRecord and Exemplar. Attribute names are values of "key", never object keys, so a walk
# over object keys cannot mistake an attribute for an id.
_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
_BAD_ID = base64.b64encode(b"\x00").decode()
"""What an id that is not hex becomes: one byte, a length no id has, so that record alone is rejected."""


class BadRequest(ValueError):
    """The body is not a valid OTLP request of the declared type."""


def parse(signal: str, body: bytes, content_type: str) -> Message:
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
    try:
        json_format.ParseDict(_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"not a valid OTLP/JSON {type(message).__name__}: {exc}") from None
    return message


def _ids_to_base64(node: Any) -> Any:
    """The JSON document with every hex id rewritten as base64, in place (iterative: depth is the sender's)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in _ID_KEYS and isinstance(value, str):
                    item[key] = _hex_to_base64(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(value for value in item if isinstance(value, (dict, list)))
    return node


def _hex_to_base64(value: str) -> str:
    if not value:
        return ""
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except (ValueError, binascii.Error):
        return _BAD_ID


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
