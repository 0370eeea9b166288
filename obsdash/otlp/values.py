"""OTLP field values → the plain JSON values of spool records, and the checks that reject one bad record.

AnyValue → JSON: string, int, double, bool as themselves; array → list; kvlist → object; bytes → base64 text
(what OTLP/JSON itself shows for a bytes value); an empty AnyValue → null. NaN and ±Inf doubles become null
(JSON has none). A record whose ids or times the store could not hold raises `Rejected`; the intake skips it,
counts it and keeps the rest of the batch (OTLP partial success).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

_INT64_MAX = (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1


class Rejected(ValueError):
    """This record cannot be stored; the message says why (it goes back to the sender)."""


def plain(value: Any) -> Any:
    """An OTLP AnyValue as a plain JSON value."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [plain(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None  # unset, or string_value_strindex (the profiles signal's string table; not used here)


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    """OTLP KeyValue pairs as an object (a repeated key: the last one wins)."""
    return {pair.key: plain(pair.value) for pair in pairs}


def hex_id(raw: bytes, size: int, field: str) -> str:
    """A required trace (16 bytes) or span (8 bytes) id as lowercase hex."""
    if len(raw) != size or not any(raw):
        raise Rejected(f"{field} must be {size} bytes, not all zero (got {len(raw)})")
    return raw.hex()


def optional_hex_id(raw: bytes, size: int, field: str) -> str | None:
    """An optional id: empty or all zero is absent; any other wrong length rejects the record."""
    if not raw or not any(raw):
        return None
    return hex_id(raw, size, field)


def time_ns(value: int, field: str) -> int:
    """A required timestamp: set, and within what the store's BIGINT nanoseconds hold."""
    if not 0 < value <= _INT64_MAX:
        raise Rejected(f"{field} is missing or out of range ({value})")
    return value


def optional_time_ns(value: int) -> int | None:
    """An optional timestamp: 0 (unset) or out of range is absent."""
    return value if 0 < value <= _INT64_MAX else None


def count(value: int, field: str) -> int:
    """A uint64 count the store's BIGINT can hold."""
    if value > _INT64_MAX:
        raise Rejected(f"{field} is out of range ({value})")
    return value


def pid(value: Any) -> int | None:
    """`process.pid` from a resource, when it is one the store's INTEGER column holds."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT32_MAX:
        return value
    return None
