"""The hub's wire format: length-prefixed JSON messages over a Unix socket (mode 0600).

A request is `{"op": ..., ...}`; a reply is `{"ok": true, ...}` or `{"ok": false, "error": ..., "hint": ...}`.
Ops: `hello`, `sync` (ingest now), `query` (read-only SQL), `stats`.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import orjson

MAX_MESSAGE = 512 * 1024 * 1024
_HEADER = struct.Struct(">I")
PROTOCOL_VERSION = 1


def _default(value: Any) -> Any:
    return str(value)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one message."""
    try:
        body = orjson.dumps(message, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers, and a HUGEINT sum goes past them (R7 fuzzing: the hub dropped the
        # client): such integers travel as their digits, as other values JSON has no type for
        body = orjson.dumps(_big_ints_as_text(message), default=_default, option=orjson.OPT_NON_STR_KEYS)
    sock.sendall(_HEADER.pack(len(body)) + body)


def _big_ints_as_text(value: Any) -> Any:
    if isinstance(value, int) and not -(1 << 63) <= value < 1 << 64:
        return str(value)
    if isinstance(value, dict):
        return {k: _big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_text(v) for v in value]
    return value


def receive(sock: socket.socket) -> dict[str, Any]:
    """Receive one message; ConnectionError when the peer is gone or speaks nonsense."""
    (length,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    if length > MAX_MESSAGE:
        raise ConnectionError(f"message of {length} bytes is over the limit")
    message = orjson.loads(_read_exactly(sock, length))
    if not isinstance(message, dict):
        raise ConnectionError("malformed message")
    return message


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("the hub closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
