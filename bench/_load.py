"""A bounded HTTP load generator for P2, run as its own process: `python -m bench._load --port P`.

`--connections` threads each send `GET /` over a raw socket, read the whole response (Content-Length), and send
the next one; a connection the server closes (`Connection: close`, as gunicorn's sync worker does) is closed with
SO_LINGER 0, so no TIME_WAIT sockets pile up over tens of thousands of requests, and opened again. Requests in the
first `--warmup` seconds are not counted in the rate. Prints one JSON line: measured requests, seconds, req/s,
every request answered (warm-up included) and errors. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: obsdash-bench\r\nAccept: */*\r\n\r\n"
LINGER_0 = struct.pack("ii", 1, 0)


class Counts:
    """What one connection thread saw."""

    def __init__(self) -> None:
        self.answered = 0
        self.measured = 0
        self.errors = 0
        self.reconnects = 0


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[bool, bool]:
    """Read one response from `sock` (leftover bytes stay in `buffer`): (status was 200, server closes)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    header_end = len(head) + 4
    lines = head.split(b"\r\n")
    ok = lines[0].split(b" ", 2)[1] == b"200"
    length = 0
    closes = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
    while len(buffer) < header_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        buffer += chunk
    del buffer[: header_end + length]
    return ok, closes


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    return sock


def _worker(port: int, measure_from: float, until: float, counts: Counts) -> None:
    sock: socket.socket | None = None
    buffer = bytearray()
    while time.perf_counter() < until:
        try:
            if sock is None:
                sock = _connect(port)
                buffer.clear()
                counts.reconnects += 1
            sock.sendall(REQUEST)
            ok, closes = _read_response(sock, buffer)
        except OSError:
            counts.errors += 1
            if sock is not None:
                sock.close()
            sock = None
            time.sleep(0.01)
            continue
        if ok:
            counts.answered += 1
            if time.perf_counter() >= measure_from:
                counts.measured += 1
        else:
            counts.errors += 1
        if closes:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def run_load(port: int, seconds: float, warmup: float, connections: int) -> dict[str, float]:
    """Load 127.0.0.1:`port` for `warmup` + `seconds` seconds; the counts of the measured part."""
    started = time.perf_counter()
    measure_from = started + warmup
    until = measure_from + seconds
    counts = [Counts() for _ in range(connections)]
    threads = [
        threading.Thread(target=_worker, args=(port, measure_from, until, c), daemon=True) for c in counts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - measure_from
    measured = sum(c.measured for c in counts)
    return {
        "requests": measured,
        "seconds": elapsed,
        "rps": measured / elapsed,
        "answered": sum(c.answered for c in counts),
        "errors": sum(c.errors for c in counts),
        "connections_opened": sum(c.reconnects for c in counts),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the load and print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench._load", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(run_load(args.port, args.seconds, args.warmup, args.connections)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
