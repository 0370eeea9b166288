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
MAX_DEPTH = 32
"""Arrays and kvlists nested deeper than this reject the record: protobuf's parser stops at 100 message levels
(~33 of these), JSON has no such limit, and the spool's encoder refuses objects nested over 254."""


class Rejected(ValueError):
    """This record cannot be stored; the message says why (it goes back to the sender)."""


def plain(value: Any, depth: int = 0) -> Any:
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
    if which in ("array_value", "kvlist_value") and depth >= MAX_DEPTH:
        raise Rejected(f"a value nested more than {MAX_DEPTH} levels deep")
    if which == "array_value":
        return [plain(item, depth + 1) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values, depth + 1)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None  # unset, or string_value_strindex (the profiles signal's string table; not used here)


def attributes(pairs: Iterable[Any], depth: int = 0) -> dict[str, Any]:
    """OTLP KeyValue pairs as an object (a repeated key: the last one wins)."""
    if isinstance(pairs, JsonPairs):
        return pairs.plain(depth)
    return {pair.key: plain(pair.value, depth) for pair in pairs}


class JsonPairs(list[Any]):
    """KeyValue pairs still as OTLP/JSON: attributes are most of a request, and reading them straight from the
    JSON is ~5x faster than through a view of each KeyValue and AnyValue (jsonview.py)."""

    def plain(self, depth: int) -> dict[str, Any]:
        out = {}
        for pair in self:
            if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
                raise Rejected("an attribute must be an object with a string key")
            out[pair["key"]] = json_plain(pair.get("value"), depth)
        return out


_JSON_ANY = {  # proto3 JSON: the lowerCamelCase name, or the field's own
    **{f"{kind}Value": kind for kind in ("string", "int", "double", "bool", "array", "kvlist", "bytes")},
    **{f"{kind}_value": kind for kind in ("string", "int", "double", "bool", "array", "kvlist", "bytes")},
}


def json_plain(raw: Any, depth: int) -> Any:
    """An OTLP/JSON AnyValue as a plain JSON value (the same mapping as `plain`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Rejected(f"an AnyValue must be an object, not {type(raw).__name__}")
    for key, value in raw.items():
        kind = _JSON_ANY.get(key)
        if kind is None or value is None:
            continue
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int":
            return _json_int64(value, key)
        if kind == "double" and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return _json_double(value, key)
        if kind in ("array", "kvlist") and isinstance(value, dict):
            return _json_nested(kind, value, depth)
        if kind == "bytes" and isinstance(value, str):
            return value  # OTLP/JSON bytes are base64 already: what `plain` makes of them
        raise Rejected(f"{key} has the wrong type: {type(value).__name__}")
    return None


def _json_nested(kind: str, value: dict[str, Any], depth: int) -> Any:
    if depth >= MAX_DEPTH:
        raise Rejected(f"a value nested more than {MAX_DEPTH} levels deep")
    items = value.get("values") or []
    if not isinstance(items, list):
        raise Rejected(f"{kind}Value.values must be a list")
    if kind == "array":
        return [json_plain(item, depth + 1) for item in items]
    return JsonPairs(items).plain(depth + 1)


def _json_int64(value: Any, field: str) -> int:
    """An int64 from OTLP/JSON: a number or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, str) and value.lstrip("-").isdigit()) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    else:
        raise Rejected(f"{field} must be an integer, not {str(value)[:40]!r}")
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        raise Rejected(f"{field} is out of the int64 range")
    return number


def _json_double(value: Any, field: str) -> float:
    try:
        return float(value)  # also "NaN", "Infinity", "-Infinity", as proto3 JSON writes them
    except ValueError:
        raise Rejected(f"{field} must be a number, not {str(value)[:40]!r}") from None


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
